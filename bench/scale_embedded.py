"""Embedded-mode scale: a store grown to 1k -> 10k -> 100k keys, and what the API does at each size.

Keys are written straight through kms_core's `SqliteStore` (each create its own durable
transaction, as the API's create is), so the create rate is the store's, without HTTP. At each
size a fresh `kubekms-api` serves the data dir and wrk measures, over HTTP: get-by-name latency
(random names) and list-page latency (random 100-key pages), then the server's RSS is read.
Security property: material is minted and sealed by kms_core with a random per-run root key.

    python bench/scale_embedded.py [--sizes 1000 10000 100000] [--seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import loadgen
from processes import PROJECT, Identity, start_api

from kms_core import material
from kms_core.model import Algorithm, KeySpec, KeyUsage
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.stores.sqlite import SqliteStore

BATCH = 64  # creates in flight at once; the store still commits them one by one


def key_name(index: int) -> str:
    return f"k{index}"


async def populate(data_dir: Path, root_key: str, start: int, stop: int) -> float:
    """Create keys [start, stop) through SqliteStore; the rate in keys/s."""
    sealer = RootKeySealer.from_base64(root_key)
    store = SqliteStore.open(data_dir, sealer.kek_id)
    algorithm = Algorithm.AES_256_GCM

    async def create(index: int) -> None:
        key_id = f"00000000-0000-4000-8000-{index:012d}"
        sealed = material.mint(key_id, 1, algorithm, sealer)
        await store.create(
            key_id, KeySpec(PROJECT, key_name(index), KeyUsage.ENCRYPT_DECRYPT, algorithm), sealed
        )

    began = time.perf_counter()
    try:
        for first in range(start, stop, BATCH):
            await asyncio.gather(*(create(i) for i in range(first, min(first + BATCH, stop))))
    finally:
        await store.close()
    return (stop - start) / (time.perf_counter() - began)


def measure(
    workdir: Path,
    identity: Identity,
    size: int,
    seconds: float,
    cpus: tuple[str | None, str | None],
    connections: int,
) -> dict[str, Any]:
    server_cpus, load_cpus = cpus
    api = start_api(workdir, identity, cpus=server_cpus, data_dir=workdir / "data", name=f"scale-{size}")
    try:
        common = {"connections": connections, "seconds": seconds, "token": identity.admin, "cpus": load_cpus}
        by_name = loadgen.run(
            api.url,
            path_template=f"/api/v1/kms/keys/key-name/k{{n}}?projectId={PROJECT}",
            path_range=size,
            **common,
        )
        pages = max(1, size - 100)
        listing = loadgen.run(
            api.url,
            path_template=f"/api/v1/kms/keys?projectId={PROJECT}&offset={{n}}&limit=100",
            path_range=pages,
            **common,
        )
        rss = api.rss_mib()
    finally:
        api.stop()
    return {"get_by_name": by_name.as_dict(), "list_page": listing.as_dict(), "rss_mib": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="embedded store scale benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk time per measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server-cpus", default=None, help="taskset list for the API, e.g. 0")
    parser.add_argument("--load-cpus", default=None, help="taskset list for wrk, e.g. 1")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    identity = Identity.random()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubekms-scale-") as tmp:
        workdir, have = Path(tmp), 0
        for size in sorted(args.sizes):
            rate = asyncio.run(populate(workdir / "data", identity.root_key, have, size))
            have = size
            entry = {
                "keys": size,
                "create_per_s": rate,
                "db_mib": (workdir / "data" / "kubekms.db").stat().st_size / 2**20,
            }
            entry |= measure(
                workdir, identity, size, args.seconds, (args.server_cpus, args.load_cpus), args.connections
            )
            results.append(entry)
            if not args.json:
                g, li = entry["get_by_name"], entry["list_page"]
                print(
                    f"{size:>7} keys: create {rate:,.0f}/s; get-by-name p50 {g['p50_ms']:.2f} ms "
                    f"p99 {g['p99_ms']:.2f} ms; list page p50 {li['p50_ms']:.2f} ms "
                    f"p99 {li['p99_ms']:.2f} ms; "
                    f"RSS {entry['rss_mib']:.0f} MiB"
                )
    if args.json:
        print(json.dumps({"connections": args.connections, "seconds": args.seconds, "sizes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
