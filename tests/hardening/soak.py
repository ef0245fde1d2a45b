"""Soak driver: a mixed load at a fraction of measured capacity against one `kubekms-api` process.

1. Start a process (rate limit off) and create an AES, an HMAC and a P-256 key.
2. Measure capacity: closed loop, `--concurrency` workers, `--probe-seconds`, mixed operations
   (encrypt 50 %, decrypt 30 %, generate-mac 10 %, sign 10 %).
3. Run an open loop at `--load` (default 0.7) of that rate for `--seconds`, recording every
   error, the p50/p99 latency of each minute and the process's RSS every 5 s.
4. Pass when there are zero errors, the last minute's p99 is within 2x the first's (+5 ms), and
   RSS grew under 5 % from the end of the first minute to the end.

    python tests/hardening/soak.py --seconds 600 [--record bench/RESULTS.md]

`--record` appends a "Soak" section with the figures and the command (one O_APPEND write).
Security property: the process runs on a throwaway data dir with a fixed test root key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "api"), str(ROOT / "core")]

import aiohttp  # noqa: E402

from fixtures.api import ADMIN, Api, b64  # noqa: E402
from fixtures.hardening import start_hardened  # noqa: E402

HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Mix:
    """One request of the mix: (method, path, body)."""

    def __init__(self, url: str, keys: dict[str, str], ciphertext: str) -> None:
        k = f"{url}/api/v1/kms/keys"
        data = b64(os.urandom(64))
        self.ops = [
            (0.5, f"{k}/{keys['aes']}/encrypt", {"plaintext": data}),
            (0.3, f"{k}/{keys['aes']}/decrypt", {"ciphertext": ciphertext}),
            (0.1, f"{k}/{keys['mac']}/generate-mac", {"data": data}),
            (0.1, f"{k}/{keys['ec']}/sign", {"signingAlgorithm": "ECDSA_SHA_256", "data": data}),
        ]

    def pick(self, rng: random.Random) -> tuple[str, dict[str, str]]:
        x = rng.random()
        for weight, path, body in self.ops:
            if x < weight:
                return path, body
            x -= weight
        return self.ops[0][1], self.ops[0][2]


async def _one(http: aiohttp.ClientSession, path: str, body: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        async with http.post(path, json=body, headers=HEADERS) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    return time.perf_counter() - started, status


async def _capacity(http: aiohttp.ClientSession, mix: Mix, seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            await _one(http, *mix.pick(rng))
            done += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / seconds


async def _open_loop(
    http: aiohttp.ClientSession, mix: Mix, rate: float, seconds: float, pid: int
) -> dict[str, Any]:
    rng = random.Random(1)
    minutes: dict[int, list[float]] = {}
    errors: dict[int, int] = {}
    rss: list[tuple[float, int]] = []
    pending: set[asyncio.Task[None]] = set()
    start = time.monotonic()

    async def fire() -> None:
        latency, status = await _one(http, *mix.pick(rng))
        minute = int((time.monotonic() - start) // 60)
        minutes.setdefault(minute, []).append(latency)
        if status != 200:
            errors[status] = errors.get(status, 0) + 1

    sent = 0
    next_rss = 0.0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            task = asyncio.create_task(fire())
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        if elapsed >= next_rss:
            rss.append((elapsed, _rss_kib(pid)))
            next_rss += 5.0
        await asyncio.sleep(0.005)
    await asyncio.gather(*pending)
    rss.append((time.monotonic() - start, _rss_kib(pid)))
    per_minute = [
        {"minute": m, "requests": len(v), "p50_ms": _pct(v, 0.5) * 1e3, "p99_ms": _pct(v, 0.99) * 1e3}
        for m, v in sorted(minutes.items())
    ]
    baseline = next((kib for t, kib in rss if t >= min(60.0, seconds / 2)), rss[0][1])
    growth = 100.0 * (rss[-1][1] - baseline) / baseline
    return {"sent": sent, "errors": errors, "per_minute": per_minute, "rss_kib_baseline": baseline,
            "rss_kib_end": rss[-1][1], "rss_growth_pct": growth}  # fmt: skip


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubekms-soak-") as tmp:
        handle = start_hardened(Path(tmp), "--rate-limit-rps", "0", "--max-concurrency", "0")
        try:
            connector = aiohttp.TCPConnector(limit=args.concurrency * 4)
            async with aiohttp.ClientSession(connector=connector) as http:
                api = Api(http, handle.url)
                mac = await api.create("soak-mac", keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256")
                ec = await api.create("soak-ec", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
                keys = {"aes": (await api.create("soak-aes"))["id"], "mac": mac["id"], "ec": ec["id"]}
                ct = await api.call("POST", api.key(keys["aes"], "encrypt"), {"plaintext": b64(b"soak")})
                mix = Mix(handle.url, keys, ct.body["ciphertext"])
                capacity = await _capacity(http, mix, args.probe_seconds, args.concurrency)
                rate = capacity * args.load
                print(
                    f"capacity {capacity:.0f} req/s; soaking at {rate:.0f} req/s for {args.seconds:.0f} s",
                    flush=True,
                )
                result = await _open_loop(http, mix, rate, args.seconds, handle.proc.pid)
        finally:
            handle.stop()
    first, last = result["per_minute"][0]["p99_ms"], result["per_minute"][-1]["p99_ms"]
    result.update(capacity_rps=capacity, target_rps=rate, seconds=args.seconds, load=args.load)
    result["passed"] = (
        not result["errors"] and last <= 2 * first + 5.0 and result["rss_growth_pct"] < 5.0
    )  # fmt: skip
    return result


def _record(path: Path, result: dict[str, Any], argv: list[str]) -> None:
    rows = "\n".join(
        f"| {m['minute']} | {m['requests']} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |"
        for m in result["per_minute"]
    )
    r = result
    host = platform.node() or "this machine"
    section = "\n".join(
        [
            "",
            "## Soak",
            "",
            f"`python tests/hardening/soak.py {' '.join(argv)}` on {host} ({os.cpu_count()} CPUs, the load",
            "generator on the same machine), one process, embedded store, root-key sealer.",
            "Mix: encrypt 50 %, decrypt 30 %, HMAC-SHA256 10 %, ECDSA P-256 sign 10 % (64-byte payloads).",
            "",
            f"- measured capacity: {r['capacity_rps']:.0f} req/s; soak rate {r['target_rps']:.0f} req/s "
            f"({r['load']:.0%}) for {r['seconds']:.0f} s, {r['sent']} requests",
            f"- errors: {sum(r['errors'].values())} {r['errors'] or ''}",
            f"- RSS: {r['rss_kib_baseline'] / 1024:.1f} MiB after warm-up -> "
            f"{r['rss_kib_end'] / 1024:.1f} MiB ({r['rss_growth_pct']:+.2f} %)",
            f"- verdict: {'PASS' if r['passed'] else 'FAIL'} "
            "(zero errors, p99 within 2x of the first minute, RSS growth < 5 %)",
            "",
            "| minute | requests | p50 ms | p99 ms |",
            "|---|---|---|---|",
            rows,
            "",
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, section.encode())  # one append: concurrent writers of other sections stay intact
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--probe-seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--record", type=Path, help="append a Soak section to this Markdown file")
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args))
    print(json.dumps(result, indent=2))
    if args.record is not None:
        _record(args.record, result, [a for a in (argv if argv is not None else sys.argv[1:])])
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
