"""`make bench`: the whole benchmark in one run, appended as a dated section to bench/RESULTS.md.

Order: crypto ceiling; every scenario against KubeKMS and the bare baseline, alternating and
keeping the best of N runs of each (noise on a shared machine only ever slows a run down); RSA
sign load with concurrent AES; `--workers 2`; the HSM sealer (cold and warm); embedded-store scale;
a hot-path profile. A failed step is recorded in the report and makes the exit status non-zero.
The server is pinned to the first CPU and wrk to the others when there are at least two.

    python bench/suite.py            quick mode (< 5 minutes): 32 connections only
    python bench/suite.py --full     (or BENCH_FULL=1) 1, 8, 32, 128 connections, longer runs
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import history
import hsm_sealer
import loadgen
import machine
import modes
import processes
import report
from processes import Identity, Server
from scenarios import BY_NAME, SCENARIOS, Prepared, prepare

BENCH = Path(__file__).resolve().parent
HEADLINE_CONNECTIONS = 32


def best(runs: list[loadgen.LoadResult]) -> loadgen.LoadResult:
    return max(runs, key=lambda r: r.rps)


class Suite:
    def __init__(self, cfg: dict[str, Any], workdir: Path, only: list[str] | None, skip: list[str]) -> None:
        self.cfg, self.workdir, self.cpus, self.skip = cfg, workdir, modes.cpu_plan(), skip
        self.prepared: dict[str, Prepared] = {}
        # Single-level steps (workers, HSM) use 32 connections, Infisical's reference level.
        levels = cfg["levels"]
        self.headline = HEADLINE_CONNECTIONS if HEADLINE_CONNECTIONS in levels else max(levels)
        self.identity = Identity.random()
        self.scenarios = [BY_NAME[n] for n in only] if only else list(SCENARIOS)
        self.results: dict[str, Any] = {"errors": {}, "commands": {}, "cpus": self.cpus}

    def load(
        self,
        server: Server,
        prepared: Prepared,
        connections: int,
        *,
        baseline: bool = False,
        seconds: float | None = None,
    ) -> loadgen.LoadResult:
        return loadgen.run(
            server.url + prepared.path,
            connections=connections,
            seconds=seconds or self.cfg["seconds"],
            token=self.identity.operator,
            body=prepared.body,
            reply_bytes=prepared.reply_bytes if baseline else None,
            cpus=self.cpus["load"],
        )

    def pair(self, api: Server, base: Server, prepared: Prepared, connections: int) -> dict[str, Any]:
        """Alternate API and baseline runs; keep each one's best."""
        api_runs, base_runs = [], []
        for _ in range(self.cfg["reps"]):
            api_runs.append(self.load(api, prepared, connections))
            base_runs.append(self.load(base, prepared, connections, baseline=True))
        a, b = best(api_runs), best(base_runs)
        for who, run in (("API", a), ("baseline", b)):
            if run.failed:  # a non-2xx reply measures the wrong path: the figure is not valid
                self.results["errors"][f"{prepared.scenario.name}@{connections} {who}"] = (
                    f"{run.failed} failed requests {run.errors}"
                )
        return {
            "scenario": prepared.scenario.name,
            "connections": connections,
            "api": a.as_dict(),
            "baseline": b.as_dict(),
            "ratio": a.rps / b.rps if b.rps else 0.0,
        }

    def script(self, name: str, *args: str) -> dict[str, Any]:
        cmd = [sys.executable, str(BENCH / name), "--json", *args]
        self.results["commands"][name] = self.shown(shlex.join(cmd))
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed ({out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-4000:]}")
        parsed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return parsed

    def shown(self, command: str) -> str:
        """A command as recorded: temporary and checkout paths replaced by short names."""
        command = command.replace(str(self.workdir), "$TMP").replace(sys.executable, ".venv/bin/python")
        return command.replace(str(BENCH.parent) + "/", "")

    # ------------------------------------------------------------------ steps

    def step_ceiling(self) -> None:
        args = ["--seconds", str(self.cfg["ceiling_seconds"]), "--only", *[s.name for s in self.scenarios]]
        if "rsa4096-sign" in args:
            args.append("rsa4096-verify")
        self.results["ceiling"] = self.script("crypto_ceiling.py", *args)["ops_per_s"]

    def step_load(self) -> None:
        api = processes.start_api(self.workdir, self.identity, cpus=self.cpus["server"])
        base = processes.start_baseline(self.workdir, cpus=self.cpus["server"])
        self.results["commands"]["api"] = self.shown(api.command)
        self.results["commands"]["baseline"] = self.shown(base.command)
        try:
            keys: dict[str, str] = {}
            self.prepared = {s.name: prepare(api, self.identity, s, keys) for s in self.scenarios}
            rows = []
            for prepared in self.prepared.values():
                for connections in self.cfg["levels"]:
                    rows.append(self.pair(api, base, prepared, connections))
                    self.results["commands"]["wrk"] = self.shown(rows[-1]["api"]["command"])
            self.results["load"] = rows
            if "mix" not in self.skip and {"rsa4096-sign", "encrypt-64B"} <= self.prepared.keys():
                self.guard(self.step_mix, "mix", api)
        finally:
            api.stop()
            base.stop()

    def step_mix(self, api: Server) -> None:
        """RSA-4096 sign load and AES encrypt load at once: does AES keep its latency?"""
        seconds = max(3, self.cfg["seconds"])
        rsa, aes = self.prepared["rsa4096-sign"], self.prepared["encrypt-64B"]
        kw = {"seconds": seconds, "token": self.identity.operator, "cpus": self.cpus["load"]}
        alone = loadgen.run(api.url + aes.path, connections=8, body=aes.body, **kw)
        rsa_run = loadgen.start(api.url + rsa.path, connections=8, body=rsa.body, **kw)  # type: ignore[arg-type]
        time.sleep(0.5)  # let the RSA load reach its steady state first
        aes_run = loadgen.run(api.url + aes.path, connections=8, body=aes.body, **kw)
        self.results["mix"] = {
            "aes_alone": alone.as_dict(),
            "aes_with_rsa": aes_run.as_dict(),
            "rsa": loadgen.finish(rsa_run, 8, seconds).as_dict(),
        }

    def step_workers(self) -> None:
        api = processes.start_api(
            self.workdir, self.identity, cpus=self.cpus["all"], workers=2, name="api-w2"
        )
        base = processes.start_baseline(self.workdir, cpus=self.cpus["all"], workers=2)
        try:
            fresh = prepare(api, self.identity, BY_NAME["encrypt-64B"], {})
            self.results["workers"] = self.pair(api, base, fresh, self.headline)
            self.results["workers"]["one_worker"] = next(
                (
                    r
                    for r in self.results.get("load", [])
                    if r["scenario"] == "encrypt-64B" and r["connections"] == self.headline
                ),
                None,
            )
        finally:
            api.stop()
            base.stop()

    def step_hsm(self) -> None:
        self.results["hsm"] = hsm_sealer.measure(
            self.workdir, self.identity, self.cpus, self.load, self.cfg["reps"], self.headline
        )

    def step_scale(self) -> None:
        sizes = [str(s) for s in self.cfg["scale_sizes"]]
        self.results["scale"] = self.script(
            "scale_embedded.py", "--sizes", *sizes, "--seconds", str(self.cfg["scale_seconds"]), *self._pins()
        )

    def step_profile(self) -> None:
        self.results["profile"] = self.script(
            "hotpath_profile.py", "--seconds", str(self.cfg["profile_seconds"]), "--top", "20", *self._pins()
        )

    def _pins(self) -> list[str]:
        pins = []
        if self.cpus["server"]:
            pins += ["--server-cpus", str(self.cpus["server"]), "--load-cpus", str(self.cpus["load"])]
        return pins

    def guard(self, fn: Callable[..., None], name: str, *args: Any) -> None:
        began = time.monotonic()
        try:
            fn(*args)
        except Exception as exc:
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"bench: {name} took {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args, mode, cfg = modes.configure(argv)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="kubekms-bench-") as tmp:
        suite = Suite(cfg, Path(tmp), args.only, args.skip)
        suite.results |= {
            "mode": mode,
            "config": cfg,
            "started": started.isoformat(timespec="seconds"),
            "machine": machine.describe(BENCH.parent),
            "argv": sys.argv[1:],
        }
        for step in modes.STEPS:
            if step != "mix" and step not in args.skip:
                suite.guard(getattr(suite, f"step_{step}"), step)
        suite.results["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    suite.results["previous"] = history.previous_targets(args.results)
    section = "\n" + report.render(suite.results)
    with args.results.open("a") as out:
        out.write(section)
    if args.json:
        args.json.write_text(json.dumps(suite.results, indent=2, default=str))
    print(section)
    return 1 if suite.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
