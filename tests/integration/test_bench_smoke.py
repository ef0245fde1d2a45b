"""Smoke test of the benchmark suite: every bench/ script runs for about a second and produces
parseable output, so the suite cannot rot unnoticed. Nothing here asserts a speed.

Needs wrk (`make bench-deps`, part of `make test`), the pinned OpenBao (`make openbao`, also part
of `make test`) and SoftHSMv2 (`make system-deps`). The plot needs matplotlib (the `bench` extra,
installed by `make bench` only), so the suite runs here with `--skip plot`.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.slow


def script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert shutil.which("wrk"), "wrk is missing: run `make bench-deps` (apt-get install wrk)"
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_crypto_ceiling_measures_every_operation() -> None:
    out = last_json(script("crypto_ceiling.py", "--seconds", "0.02", "--json"))
    names = {
        "encrypt-64B",
        "decrypt-4KiB",
        "hmac-verify",
        "ecdsa-p256-sign",
        "ed25519-verify",
        "rsa4096-sign",
    }
    assert names <= out["ops_per_s"].keys()
    assert all(rate > 0 for rate in out["ops_per_s"].values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_baseline_server_mimics_the_reply_size_and_needs_a_token(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "baseline.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "baseline_server.py"), "--port", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not re.search(r'"message":"listening"', (tmp_path / "baseline.log").read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "baseline.log"
            ).read_text()
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/api/v1/kms/keys/k/encrypt"
        headers = {"Content-Type": "application/json", "X-Bench-Reply-Bytes": "321"}
        status, body = _post(url, b'{"plaintext":"aGk="}', {**headers, "Authorization": "Bearer t"})
        assert status == 200 and len(body) == 321 and json.loads(body)["result"]
        assert _post(url, b'{"plaintext":"aGk="}', headers)[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert '"route":"/api/v1/kms/keys/{keyId}/{op}","status":200' in (tmp_path / "baseline.log").read_text()


def _start(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    log_path = tmp_path / f"{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / name), "--port", str(port), *args], stdout=log, stderr=log
        )
    deadline = time.monotonic() + 30
    while not re.search(r'"message": ?"listening"', log_path.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    return proc, port


def test_bare_server_decodes_and_signs_with_the_same_primitive(tmp_path: Path) -> None:
    proc, port = _start(tmp_path, "bare_server.py")
    try:
        base = f"http://127.0.0.1:{port}/api/v1/kms/keys"
        headers = {"Content-Type": "application/json", "X-Bench-Reply-Bytes": "200"}
        status, body = _post(base + "/k/encrypt", b'{"plaintext":"aGk="}', headers)
        assert status == 200 and len(body) == 200
        assert _post(base + "/k/encrypt", b'{"plaintext":"not base64!"}', headers)[0] == 422
        status, body = _post(base, b'{"algorithm":"ECC_NIST_ED25519"}', headers)
        key = json.loads(body)["key"]["id"]
        sign = {"signingAlgorithm": "ED25519_SHA_512", "data": "aGk="}
        status, body = _post(f"{base}/{key}/sign", json.dumps(sign).encode(), headers)
        signature = json.loads(body)["signature"]
        verify = {**sign, "signature": signature}
        status, body = _post(f"{base}/{key}/verify", json.dumps(verify).encode(), headers)
        assert status == 200 and json.loads(body)["signatureValid"] is True
        tampered = {**sign, "data": "aGl0", "signature": signature}
        status, body = _post(f"{base}/{key}/verify", json.dumps(tampered).encode(), headers)
        assert json.loads(body)["signatureValid"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_run_with_non_2xx_replies_is_not_a_result(tmp_path: Path) -> None:
    """The load generator counts every reply outside 2xx and refuses the run's figures."""
    sys.path.insert(0, str(BENCH))
    try:
        import loadgen
    finally:
        sys.path.remove(str(BENCH))
    proc, port = _start(tmp_path, "bare_server.py")
    try:
        url = f"http://127.0.0.1:{port}/api/v1/kms/keys/k/encrypt"
        good = loadgen.run(url, connections=2, seconds=1, token="t", body=b'{"plaintext":"aGk="}')
        assert good.requests > 0 and good.failed == 0 and good.errors["non2xx"] == 0
        with pytest.raises(loadgen.NotAResult) as refused:
            loadgen.run(url, connections=2, seconds=1, token="t", body=b'{"plaintext":"!"}')  # 422s
        assert refused.value.errors["non2xx"] > 0
        counted = loadgen.run(url, connections=2, seconds=1, token="t", body=b"{}", allow_failures=True)
        assert counted.failed == counted.errors["non2xx"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_suite_runs_each_step_and_appends_a_section(tmp_path: Path) -> None:
    results, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    results.write_text("# history\n\nan earlier section\n")
    args = [
        "--seconds",
        "1",
        "--reps",
        "1",
        "--connections",
        "4",
        "--dialect-pairs",
        "2",
        "--only",
        "encrypt-64B",
        "decrypt-64B",
        "rsa4096-sign",
        "--skip",
        "scale",
        "profile",
        "plot",
        "--results",
        str(results),
        "--json",
        str(raw),
    ]
    run = script("suite.py", *args, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    data = json.loads(raw.read_text())
    assert data["errors"] == {}
    assert {r["scenario"] for r in data["load"]} == {
        "encrypt-64B", "decrypt-64B", "rsa4096-sign", "encrypt-batch100"
    }
    for row in data["load"]:
        # KubeKMS, both baselines and OpenBao Transit with and without its file audit device,
        # each with valid (all-2xx) runs and a ratio; KubeKMS's Transit route beside its
        # Infisical one on encrypt; the batch row (KubeKMS's Transit batch) vs OpenBao only.
        servers = ["api", "openbao", "openbao_audit"]
        if row["scenario"] != "encrypt-batch100":
            servers += ["baseline", "bare"]
        extra = {"scenario", "connections", "ratios", "ratio"}
        if row["scenario"] == "encrypt-64B":
            servers.append("transit")
            # The dialect target's paired runs: both routes, order alternating, all 2xx.
            dialect = row["dialect"]
            assert dialect["pairs"] == 2 and len(dialect["ratios"]) == 2, dialect
            assert dialect["ratio"] == pytest.approx(sum(dialect["ratios"]) / 2) and dialect["ratio"] > 0
            extra.add("dialect")
        assert set(row) - extra == set(servers), row
        for server in servers:
            assert row[server] is not None and row[server]["requests"] > 0, (server, row)
            assert row[server]["failed"] == 0 and row[server]["errors"]["non2xx"] == 0, (server, row)
        assert all(ratio and ratio > 0 for ratio in row["ratios"].values()), row
    assert data["openbao_version"].startswith("OpenBao v") and data["openbao_audit_lines"] > 0
    assert data["mix"]["aes_with_rsa"]["failed"] == 0 and data["mix"]["rsa"]["requests"] > 0
    assert data["workers"]["api"]["failed"] == 0
    assert data["hsm"]["warm"]["failed"] == 0 and len(data["hsm"]["timings_ms"]) == 4
    text = results.read_text()
    assert text.startswith("# history\n\nan earlier section\n")  # history is kept
    for heading in ("### Machine", "### Commands", "### Targets", "### HSM sealer", "### `--workers 2`"):
        assert heading in text
    assert "### Load: KubeKMS vs OpenBao Transit (OpenBao v" in text
    assert "| rsa4096-sign vs OpenBao + file audit (4 conns) |" in text
    assert "| encrypt-64B Transit vs Infisical route (4 conns) | median of 2 paired runs (" in text
    assert "| encrypt-batch100 vs OpenBao + file audit (4 conns) |" in text
    assert "| encrypt-64B vs bare aiohttp (4 conns) |" in text
    assert "| rsa4096-sign vs bare same primitive (4 conns) |" in text
    assert "<token>" in text and data["config"]["levels"] == [4]


def test_scale_embedded_grows_the_store_and_measures_reads() -> None:
    out = last_json(script("scale_embedded.py", "--sizes", "40", "120", "--seconds", "1", "--json"))
    assert [s["keys"] for s in out["sizes"]] == [40, 120]
    for size in out["sizes"]:
        assert size["create_per_s"] > 0 and size["rss_mib"] > 0
        for kind in ("get_by_name", "list_page"):
            assert size[kind]["requests"] > 0 and size[kind]["failed"] == 0, size


def test_scale_kubernetes_syncs_the_api_and_reconciles_new_keys() -> None:
    args = ("--sizes", "30", "--operator-keys", "20", "--seconds", "1", "--timeout", "60", "--json")
    out = last_json(script("scale_kubernetes.py", *args))
    [api] = out["api"]
    assert api["keys"] == 30 and 0 < api["readyz_s"] <= api["synced_s"] and api["rss_mib"] > 0
    assert api["sync_replies"].get("200", 0) >= 2  # the last key answered by name and encrypted
    for kind in ("get_by_name", "encrypt", "list_page"):
        assert api[kind]["requests"] > 0 and api[kind]["failed"] == 0, api
    [op] = out["operator"]
    assert op["new_keys"] == 20 and op["ready_100pct_s"] == op["all_ready_s"] > 0 and op["rss_mib"] > 0


def test_hotpath_profile_lists_per_request_work() -> None:
    out = last_json(script("hotpath_profile.py", "--seconds", "1", "--top", "50", "--json"))
    assert out["requests"] > 10 and out["failed"] == 0 and out["healthz_status"] == 200
    functions = [row["function"] for row in out["per_request"]]
    assert any("kms_api/" in f for f in functions), functions
    assert all(row["calls_per_request"] >= 0.9 for row in out["per_request"])


def test_ablation_measures_cpu_per_request_with_parts_switched_off() -> None:
    args = ("--parts", "logs", "crypto", "--seconds", "1", "--reps", "1", "--json")
    out = last_json(script("ablation.py", *args))
    servers = out["servers"]
    assert set(servers) == {"baseline", "full", "no-logs", "no-crypto", "none-of-them"}
    assert all(s["requests"] > 10 and s["cpu_us_per_request"] > 0 for s in servers.values())
    assert servers["full"]["saved_us"] == 0 and servers["baseline"]["saved_us"] is None
