"""What the benchmark ran on: CPU, cores, memory, load, kernel, tool and library versions, commit.

Recorded with every result because figures from different machines, or from a loaded machine,
are not comparable. Security property: reads only public system facts; no environment values.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LIBRARIES = ("aiohttp", "uvloop", "orjson", "cryptography", "python-pkcs11", "prometheus-client")


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _run(*cmd: str) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else ""
    )


def describe(repo: Path) -> dict[str, str]:
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} missing")
    commit = _run("git", "-C", str(repo), "rev-parse", "--short", "HEAD")
    dirty = _run("git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no")
    load1, load5, _ = os.getloadavg()
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cpus": f"{os.cpu_count()} online, this process may use {len(os.sched_getaffinity(0))}",
        "memory": _first("/proc/meminfo", "MemTotal") or "unknown",
        "load average at start": f"{load1:.2f} (1 min), {load5:.2f} (5 min)",
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "libraries": ", ".join(versions),
        "wrk": _run("wrk", "--version"),
        "commit": commit + (" (with uncommitted changes)" if dirty and dirty != "unavailable" else ""),
    }
