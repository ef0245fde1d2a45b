"""Benchmark modes (quick for `make bench`, full for BENCH_FULL=1), the suite's command line, and CPU pinning.

Quick mode stays under five minutes on two cores by loading at 32 connections only (the level of
Infisical's reference figure) and stopping the scale run at 10k keys; full mode adds 1, 8 and 128
connections, 100k keys and ten-second runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from scenarios import BY_NAME as SCENARIOS

MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "levels": [32],
        "seconds": 2,
        "reps": 2,
        "dialect_pairs": 6,
        "ceiling_seconds": 0.3,
        "scale_sizes": [1000, 10000],
        "scale_seconds": 2,
        "profile_seconds": 3,
    },
    "full": {
        "levels": [1, 8, 32, 128],
        "seconds": 10,
        "reps": 2,
        "dialect_pairs": 6,
        "ceiling_seconds": 2.0,
        "scale_sizes": [1000, 10000, 100000],
        "scale_seconds": 10,
        "profile_seconds": 10,
    },
}
# "openbao" (the two OpenBao servers of the load step) and "plot" run within or after others,
# and can be skipped like any step.
STEPS = ("ceiling", "load", "mix", "openbao", "transit", "workers", "hsm", "scale", "profile", "plot")


def cpu_plan() -> dict[str, str | None]:
    """Server on the first usable CPU, wrk on the rest; no pinning on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {"server": None, "load": None, "all": None}
    return {"server": str(cpus[0]), "load": ",".join(map(str, cpus[1:])), "all": ",".join(map(str, cpus))}


def configure(argv: list[str] | None) -> tuple[argparse.Namespace, str, dict[str, Any]]:
    """Parse the command line; the mode name and its settings with overrides applied."""
    parser = argparse.ArgumentParser(description="KubeKMS benchmark suite")
    parser.add_argument("--full", action="store_true", default=os.environ.get("BENCH_FULL") == "1")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="scenarios to load")
    parser.add_argument("--skip", nargs="+", choices=STEPS, default=[], help="steps to leave out")
    parser.add_argument("--seconds", type=float, help="override the per-run wrk duration")
    parser.add_argument("--reps", type=int, help="override the runs per server and scenario")
    parser.add_argument("--connections", type=int, nargs="+", help="override the concurrency levels")
    parser.add_argument("--scale-sizes", type=int, nargs="+", help="override the store sizes")
    parser.add_argument("--dialect-pairs", type=int, help="override the paired Transit/Infisical runs")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).resolve().parent / "RESULTS.md",
        help="Markdown file to append to",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    mode = "full" if args.full else "quick"
    cfg = dict(MODES[mode])
    overrides = {
        "levels": args.connections,
        "seconds": args.seconds,
        "reps": args.reps,
        "scale_sizes": args.scale_sizes,
        "dialect_pairs": args.dialect_pairs,
    }
    for key, value in overrides.items():
        if value is not None:
            cfg[key] = value
    if args.seconds is not None:
        cfg.update(
            ceiling_seconds=min(cfg["ceiling_seconds"], args.seconds / 10),
            scale_seconds=args.seconds,
            profile_seconds=args.seconds,
        )
    return args, mode, cfg
