"""`make bench`: the whole benchmark in one run, appended as a dated section to bench/RESULTS.md.

Order: crypto ceiling; every scenario against KubeKMS, the logging baseline, the truly bare
endpoint (with the same `cryptography` call for sign/verify), OpenBao Transit as installed and
OpenBao Transit with a file audit device, one run of each in turn and keeping the best of N runs
of each (noise on a shared machine only ever slows a run down); RSA sign load with concurrent
AES; `--workers 2`; the HSM sealer (cold and warm); embedded-store scale; a hot-path profile; the
plot of KubeKMS vs OpenBao. A failed step, or a run with any non-2xx reply (loadgen.NotAResult:
its figure is dropped), is recorded in the report and makes the exit status non-zero. Every
server is pinned to the first CPU and wrk to the others when there are at least two.

    python bench/suite.py            quick mode (< 5 minutes): 32 connections only
    python bench/suite.py --full     (or BENCH_FULL=1) 1, 8, 32, 128 connections, longer runs
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import history
import hsm_sealer
import loadgen
import machine
import modes
import openbao
import plot
import processes
import report
import transit_routes
from processes import Identity, Server, cpu_seconds
from scenarios import BY_NAME, SCENARIOS, Prepared, prepare

BENCH = Path(__file__).resolve().parent
HEADLINE_CONNECTIONS = 32


def best(runs: list[loadgen.LoadResult]) -> loadgen.LoadResult:
    return max(runs, key=lambda r: r.rps)


# The servers of the load step, in the order they take turns; "api" is KubeKMS ("transit": its
# Vault Transit route for the same operation, on encrypt scenarios).
CONTENDERS = ("api", "transit", "baseline", "bare", "openbao", "openbao_audit")
PEERS = ("openbao", "openbao_audit")


@dataclass(frozen=True)
class Target:
    """One server's request for a scenario: where wrk sends what, with which token."""

    server: Server
    path: str
    body: bytes
    token: str
    reply_bytes: int | None = None
    namespace: str | None = None  # X-Vault-Namespace (KubeKMS's Transit routes)


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
        """Alternate API and baseline runs; keep each one's best (the `--workers 2` step)."""
        targets = {
            "api": Target(api, prepared.path, prepared.body, self.identity.operator),
            "baseline": Target(
                base, prepared.path, prepared.body, self.identity.operator, prepared.reply_bytes
            ),
        }
        return self.rounds(prepared.scenario.name, targets, connections)

    def rounds(self, scenario: str, targets: dict[str, Target], connections: int) -> dict[str, Any]:
        """One run per server in turn, `reps` times; each server's best run and the API's ratio to each.

        A run with any non-2xx reply or socket error is not a result: it is recorded as an error
        and left out, and a server with no valid run gets no figure (and no ratio)."""
        runs: dict[str, list[loadgen.LoadResult]] = {name: [] for name in targets}
        for _ in range(self.cfg["reps"]):
            for name, t in targets.items():
                try:
                    runs[name].append(
                        loadgen.run(
                            t.server.url + t.path,
                            connections=connections,
                            seconds=self.cfg["seconds"],
                            token=t.token,
                            body=t.body,
                            reply_bytes=t.reply_bytes,
                            cpus=self.cpus["load"],
                            namespace=t.namespace,
                        )
                    )
                except loadgen.NotAResult as exc:
                    self.results["errors"][f"{scenario}@{connections} {name}"] = str(exc).split(": /", 1)[0]
        row: dict[str, Any] = {"scenario": scenario, "connections": connections}
        for name, results in runs.items():
            row[name] = best(results).as_dict() if results else None
        api_rps = row["api"]["rps"] if row.get("api") else 0.0
        row["ratios"] = {
            name: (api_rps / row[name]["rps"] if api_rps and row[name] and row[name]["rps"] else None)
            for name in targets
            if name != "api"
        }
        row["ratio"] = row["ratios"].get("baseline") or 0.0
        return row

    def paired(self, scenario: str, targets: dict[str, Target], connections: int) -> dict[str, Any]:
        """The Transit route against the Infisical route for the same key and input: `pairs`
        back-to-back runs of the two, their order alternating. Per pair: the throughput ratio
        (transit / api) and the server-CPU ratio (api's CPU per request / transit's); the medians
        are reported. A 5 % target needs this: a shared machine's drift moves both runs of a pair
        alike, where the best of two short runs moves by 10-15 %; CPU per request (utime + stime
        of the one API process over the run) is what the dialect's layer costs, and a neighbour
        or the load generator barely moves it."""
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        pid = targets["api"].server.proc.pid  # both routes are served by the same process
        for index in range(self.cfg["dialect_pairs"]):
            order = ("api", "transit") if index % 2 == 0 else ("transit", "api")
            rps: dict[str, float] = {}
            cpu_per_request: dict[str, float] = {}
            for name in order:
                t = targets[name]
                before = cpu_seconds(pid)
                try:
                    run = loadgen.run(
                        t.server.url + t.path,
                        connections=connections,
                        seconds=self.cfg["seconds"],
                        token=t.token,
                        body=t.body,
                        cpus=self.cpus["load"],
                        namespace=t.namespace,
                    )
                except loadgen.NotAResult as exc:  # not a result: this pair counts for nothing
                    where = f"{scenario}@{connections} {name} (paired)"
                    self.results["errors"][where] = str(exc).split(": /", 1)[0]
                    continue
                rps[name] = run.rps
                cpu_per_request[name] = (cpu_seconds(pid) - before) / max(run.requests, 1)
            if rps.get("api") and rps.get("transit"):
                ratios.append(rps["transit"] / rps["api"])
                cpu_ratios.append(cpu_per_request["api"] / cpu_per_request["transit"])
        return {
            "pairs": len(ratios),
            "ratio": statistics.median(ratios) if ratios else None,
            "ratios": ratios,
            "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
            "cpu_ratios": cpu_ratios,
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
        cpu = self.cpus["server"]
        servers: dict[str, Server] = {}
        try:
            servers["api"] = processes.start_api(self.workdir, self.identity, cpus=cpu)
            servers["baseline"] = processes.start_baseline(self.workdir, cpus=cpu)
            servers["bare"] = processes.start_bare(self.workdir, cpus=cpu)
            if "openbao" not in self.skip:
                self.results["openbao_version"] = openbao.version()
                for name in PEERS:
                    servers[name] = openbao.start(
                        self.workdir, self.identity.operator, cpus=cpu, audit=name == "openbao_audit"
                    )
            for name, server in servers.items():
                self.results["commands"][name] = self.shown(server.command)
            api, bare = servers["api"], servers["bare"]
            keys: dict[str, str] = {}
            self.prepared = {s.name: prepare(api, self.identity, s, keys) for s in self.scenarios}
            bare_keys: dict[str, str] = {}
            peer_keys: dict[str, dict[str, str]] = {name: {} for name in PEERS}
            rows = []
            for name, prepared in self.prepared.items():
                token = self.identity.operator
                targets = {
                    "api": Target(api, prepared.path, prepared.body, token),
                }
                if prepared.scenario.op == "encrypt" and "transit" not in self.skip:
                    # The Transit dialect's route for the same key and plaintext, in the same turns.
                    vault = transit_routes.encrypt(api, token, prepared)
                    targets["transit"] = Target(api, vault.path, vault.body, token, namespace=vault.namespace)
                targets |= {
                    "baseline": Target(
                        servers["baseline"], prepared.path, prepared.body, token, prepared.reply_bytes
                    ),
                }
                if prepared.scenario.usage == "sign-verify":
                    # The same cryptography call on the bare server's own key and signature.
                    own = prepare(bare, self.identity, prepared.scenario, bare_keys)
                    targets["bare"] = Target(bare, own.path, own.body, token)
                else:
                    targets["bare"] = Target(bare, prepared.path, prepared.body, token, prepared.reply_bytes)
                for peer in PEERS:
                    if peer in servers:
                        bao = servers[peer]
                        assert isinstance(bao, openbao.Bao)
                        transit = openbao.prepare(bao, name, peer_keys[peer])
                        targets[peer] = Target(bao, transit.path, transit.body, bao.token)
                levels = self.cfg["levels"]
                headline = HEADLINE_CONNECTIONS if HEADLINE_CONNECTIONS in levels else levels[-1]
                for connections in levels:
                    rows.append(self.rounds(name, targets, connections))
                    if "transit" in targets and connections == headline:
                        rows[-1]["dialect"] = self.paired(name, targets, connections)
                    if rows[-1]["api"]:
                        self.results["commands"]["wrk"] = self.shown(rows[-1]["api"]["command"])
            aes = self.prepared.get("encrypt-64B")
            if aes is not None and "transit" not in self.skip:
                rows += self.batch_rows(servers, aes, peer_keys)
            self.results["load"] = rows
            if "mix" not in self.skip and {"rsa4096-sign", "encrypt-64B"} <= self.prepared.keys():
                self.guard(self.step_mix, "mix", api)
        finally:
            for server in servers.values():
                server.stop()
        audited = servers.get("openbao_audit")
        if isinstance(audited, openbao.Bao) and audited.audit_log is not None and audited.audit_log.exists():
            # Proof the audit device was writing: one request and one response entry per call.
            self.results["openbao_audit_lines"] = sum(1 for _ in audited.audit_log.open("rb"))

    def batch_rows(
        self, servers: dict[str, Server], aes: Prepared, peer_keys: dict[str, dict[str, str]]
    ) -> list[dict[str, Any]]:
        """Batch encrypt, 100 items per request: KubeKMS's Transit route vs OpenBao's (with and
        without its audit device). No baseline: neither baseline server has a batch."""
        token = self.identity.operator
        mine = transit_routes.batch_kubekms(servers["api"], token, aes)
        targets = {"api": Target(servers["api"], mine.path, mine.body, token, namespace=mine.namespace)}
        for peer in PEERS:
            bao = servers.get(peer)
            if isinstance(bao, openbao.Bao):
                theirs = transit_routes.batch_openbao(bao, peer_keys[peer])
                targets[peer] = Target(bao, theirs.path, theirs.body, bao.token)
        return [self.rounds(transit_routes.BATCH_SCENARIO, targets, c) for c in self.cfg["levels"]]

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
            one = next(
                (
                    r
                    for r in self.results.get("load", [])
                    if r["scenario"] == "encrypt-64B" and r["connections"] == self.headline
                ),
                None,
            )
            # Only the API and baseline figures of the one-worker row are compared.
            self.results["workers"]["one_worker"] = (
                {k: one[k] for k in ("api", "baseline")} if one and one["api"] and one["baseline"] else None
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
            if step not in ("mix", "openbao", "transit", "plot") and step not in args.skip:
                suite.guard(getattr(suite, f"step_{step}"), step)
        if "plot" not in args.skip and suite.results.get("load"):
            image = args.results.parent / plot.FILENAME
            suite.guard(lambda: suite.results.update(plot=plot.render(suite.results, image)), "plot")
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
