"""A container spec from a rendered manifest, run as a local process against the emulated cluster.

What a kubelet would do for one container, reduced to what a process on loopback needs: the
command and args exactly as rendered (the listen host becomes 127.0.0.1 and each declared
container port a free local port), the environment with `valueFrom` resolved against objects
stored in the emulator (Secrets, ConfigMaps, the Pod's namespace), and the in-cluster API address
replaced by a kubeconfig for the emulator carrying the Pod's ServiceAccount token. Probes are read
from the same spec, so tests call the paths and ports the chart tells the kubelet to call.

    spec = Container.of(deployment, cluster)        # the first container of a Deployment or Pod
    proc = spec.start(tmp_path / "api.log", KUBECONFIG=str(path))
    spec.probe_url("readinessProbe")                # "http://127.0.0.1:<mapped port>/readyz"

Security property: none (test infrastructure); resolved Secret values stay in the child's
environment and are never printed.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube.cluster import Cluster

BIN = Path(sys.executable).parent  # the venv's console scripts (kubekms-api, kubekms-operator)
LISTEN_FLAGS = ("--host", "--bind", "--address")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Container:
    """One container of a Pod template; `ports` maps each declared containerPort to a local port."""

    namespace: str
    pod_name: str
    spec: dict[str, Any]
    env: dict[str, str]
    ports: dict[int, int] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)  # port name -> containerPort

    @classmethod
    def of(cls, manifest: dict[str, Any], cluster: Cluster, index: int = 0) -> Container:
        meta = manifest["metadata"]
        pod = manifest["spec"]["template"]["spec"] if manifest["kind"] != "Pod" else manifest["spec"]
        spec = pod["containers"][index]
        namespace = meta.get("namespace") or "default"
        declared = {int(p["containerPort"]): p.get("name", "") for p in spec.get("ports") or []}
        return cls(
            namespace=namespace,
            pod_name=f"{meta['name']}-local",
            spec=spec,
            env=resolve_env(spec.get("env") or [], namespace, meta["name"], cluster),
            ports={port: free_port() for port in declared},
            names={name: port for port, name in declared.items() if name},
        )

    def local_port(self, port: int | str) -> int:
        """The local port standing for a containerPort given by number or by name."""
        number = self.names[port] if isinstance(port, str) and not port.isdigit() else int(port)
        return self.ports[number]

    def argv(self) -> list[str]:
        """command + args as rendered, with listen addresses and declared ports made local."""
        command = [str(c) for c in self.spec.get("command") or []]
        if not command:
            raise AssertionError(f"container {self.spec['name']} has no command (the image's is not known)")
        program = sys.executable if command[0] in ("python", "python3") else str(BIN / command[0])
        args = [str(a) for a in self.spec.get("args") or []]
        out: list[str] = []
        for i, arg in enumerate(args):
            flag = args[i - 1] if i else ""
            if flag in LISTEN_FLAGS:
                arg = "127.0.0.1"
            elif flag.endswith("-port") and arg.isdigit() and int(arg) in self.ports:
                arg = str(self.ports[int(arg)])
            out.append(arg)
        return [program, *command[1:], *out]

    def probe_url(self, probe: str) -> str:
        """The URL of an httpGet probe (startupProbe, livenessProbe, readinessProbe) on loopback."""
        get = self.spec[probe]["httpGet"]
        scheme = str(get.get("scheme", "HTTP")).lower()
        return f"{scheme}://127.0.0.1:{self.local_port(get['port'])}{get.get('path', '/')}"

    def start(self, log_path: Path, **extra_env: str) -> subprocess.Popen[bytes]:
        """Run the container's command with its resolved environment plus `extra_env`."""
        # PYTHONPATH too: a checkout run with its own source roots must run its own processes.
        base = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH") if k in os.environ}
        env = {**base, "HOME": str(log_path.parent), "PYTHONUNBUFFERED": "1", **self.env, **extra_env}
        with log_path.open("ab") as log:
            return subprocess.Popen(self.argv(), env=env, stdout=log, stderr=subprocess.STDOUT)


def resolve_env(
    entries: list[dict[str, Any]], namespace: str, pod_name: str, cluster: Cluster
) -> dict[str, str]:
    """`env` of a container spec, with fieldRef / secretKeyRef / configMapKeyRef resolved.

    An unknown source fails the test: a chart change the emulation does not understand must be
    looked at, not silently dropped.
    """
    env: dict[str, str] = {}
    for entry in entries:
        name, source = entry["name"], entry.get("valueFrom")
        if source is None:
            env[name] = str(entry.get("value", ""))
        elif "fieldRef" in source:
            fields = {"metadata.namespace": namespace, "metadata.name": pod_name}
            env[name] = fields[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            is_secret = "secretKeyRef" in source
            ref = source["secretKeyRef" if is_secret else "configMapKeyRef"]
            obj = cluster.get("v1/secrets" if is_secret else "v1/configmaps", namespace, ref["name"])
            data = (obj or {}).get("data") or {}
            if ref["key"] not in data:
                if ref.get("optional"):
                    continue
                missing = f"{ref['name']}/{ref['key']}"
                raise AssertionError(f"env {name}: {missing} is not in namespace {namespace}")
            value = data[ref["key"]]
            env[name] = base64.b64decode(value).decode() if is_secret else str(value)
        else:
            raise AssertionError(f"env {name}: unsupported valueFrom {sorted(source)}")
    return env


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
