"""Soak output: a progress line per minute, a console summary, and the "Soak" section of RESULTS.md.

`record` replaces the last "## Soak" section of a Markdown file (other sections are left
byte-for-byte) and keeps its "*Earlier runs.*" paragraph, so a rerun does not erase history.
Security property: renders counts, timings and commands whose token is already `<token>`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

EARLIER = "*Earlier runs.*"
FIRST_BUCKET_MS = 0.5
GENERATOR_TEXT = {"wrk": "paced `wrk` (bench/lua/paced.lua)", "hey": "`hey -q`"}


def progress(row: dict[str, Any]) -> str:
    return (
        f"minute {row['minute']}: {row['client_requests']} requests ({row['client_rps']:.0f}/s), "
        f"errors {row['client_errors']}/{row['server_errors']}, server p50 {row['server_p50_ms']:.2f} "
        f"p99 {row['server_p99_ms']:.2f} ms, client p99 {row['client_p99_ms']:.2f} ms, "
        f"server CPU {row['server_cpu']:.0%} (CPUs busy {busy(row)}), RSS {row['rss_kib'] / 1024:.1f} MiB"
    )


def _ms(value: float) -> str:
    # Below the histogram's first bucket bound (0.5 ms) interpolation only restates the bound.
    return "< 0.5" if value <= FIRST_BUCKET_MS else f"{value:.2f}"


def busy(row: dict[str, Any]) -> str:
    return " ".join(f"{cpu}:{frac:.0%}" for cpu, frac in sorted(row["cpu_busy"].items()))


def _verdict_lines(verdict: dict[str, Any]) -> list[str]:
    word = {True: "met", False: "MISSED", None: "not judged"}
    return [
        f"- {name}: **{word[v['ok']]}** ({v['detail']}); rule: {v['rule']}"
        for name, v in verdict.items()
        if name != "passed"
    ]


def summary(result: dict[str, Any]) -> str:
    verdict = result["verdict"]
    lines = [f"soak {'PASS' if verdict['passed'] else 'FAIL'}", *_verdict_lines(verdict)]
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| minute | s | requests (client) | req/s | errors client/server | server p50 ms | "
        "server p99 ms | client p99 ms (worst op) | late > 1 ms (max ms) | server CPU | CPUs busy | "
        "RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = "" if r["full"] else " (partial)"
        out.append(
            f"| {r['minute']}{mark} | {r['seconds']:.1f} | {r['client_requests']} | {r['client_rps']:.0f} | "
            f"{r['client_errors']}/{r['server_errors']} | {_ms(r['server_p50_ms'])} | "
            f"{_ms(r['server_p99_ms'])} | {r['client_p99_ms']:.1f} | {r['late']} ({r['max_late_ms']:.0f}) | "
            f"{r['server_cpu']:.0%} | {busy(r)} | {r['rss_kib'] / 1024:.1f} |"
        )
    return out


def section(result: dict[str, Any], argv: list[str]) -> str:
    """The Markdown "## Soak" section for one run (without the earlier-runs paragraph)."""
    r, m, cap = result, result["machine"], result["capacity"]
    rss = r["rss_samples"]
    lines = [
        "## Soak",
        "",
        f"`python tests/hardening/soak.py {' '.join(argv)}` (what `make soak` runs after the crash "
        f"iterations) on {m['cpu']}, {m['cpus']}, {m['memory']}, kernel {m['kernel']}, Python "
        f"{m['python']}, commit {m['commit']}; load average at start {m['load average at start']}.",
        f"Server on CPU {r['cpus']['server']}, load generators and driver on CPU {r['cpus']['clients']} "
        "(taskset). One process, embedded SQLite store, root-key sealer, info-level access log to a "
        "file, rate limit and concurrency bound off. Mix: encrypt 50 %, decrypt 30 %, HMAC-SHA256 "
        "10 %, ECDSA P-256 sign 10 % (64-byte payloads).",
        "",
        f"- server: `{r['server_command']}`",
        f"- capacity (closed loop, 32 wrk connections split 16/10/3/3 over the mix, "
        f"{r['probe_seconds']:g} s, as `make bench`): "
        f"**{cap['rps']:.0f} req/s** {cap['by_operation']}, server CPU {cap['server_cpu']:.0%}, "
        f"CPUs busy {busy(cap)}",
        f"- soak: fixed rate **{r['target_rps']:.0f} req/s** ({r['load']:.0%}) for {r['seconds']:g} s in "
        f"{r['slice_seconds']:g}-s slices; per slice one {GENERATOR_TEXT[r['generator']]} per operation at "
        "its share, e.g. "
        f"`{r['load_commands'][0]}`",
        "- latency: server p50/p99 from `kubekms_request_duration_seconds` bucket deltas between "
        "scrapes at each slice's end (interpolated as `histogram_quantile`; it times the request "
        "middleware, so it excludes time a request waits for the event loop); client p99 from "
        "each load generator's own percentiles, the worst of the four operations (an upper bound on "
        "the mix's p99); late = requests sent over 1 ms after their slot because every connection "
        "was busy (their wait is not in the client latency)",
        f"- RSS (every 5 s, {len(rss)} samples): start {rss[0][1] / 1024:.1f} MiB, min "
        f"{min(s for _, s in rss) / 1024:.1f}, max {max(s for _, s in rss) / 1024:.1f}, end "
        f"{r['minutes'][-1]['rss_kib'] / 1024:.1f} MiB; server log {r['log']['bytes'] / 2**20:.0f} MiB",
        "",
        *_table(r["minutes"]),
        "",
        f"Verdict: **{'PASS' if r['verdict']['passed'] else 'FAIL'}**",
        "",
        *_verdict_lines(r["verdict"]),
        "",
    ]
    return "\n".join(lines)


def record(path: Path, new_section: str) -> None:
    """Replace the last "## Soak" section of `path` with `new_section`, keeping its earlier-runs note."""
    text = path.read_text()
    start = text.rfind("\n## Soak\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + new_section)
        return
    following = re.search(r"\n## ", text[start + 1 :])
    end = start + 1 + following.start() if following else len(text)
    old = text[start:end]
    kept = ""
    at = old.find(EARLIER)
    if at >= 0:
        paragraph_end = old.find("\n\n", at)
        kept = old[at : paragraph_end if paragraph_end >= 0 else len(old)].rstrip() + "\n"
    body = new_section.rstrip("\n") + "\n" + ("\n" + kept if kept else "")
    path.write_text(text[: start + 1] + body + text[end:])
