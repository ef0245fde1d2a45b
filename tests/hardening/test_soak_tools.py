"""The soak's measuring parts: histogram quantiles, scrape deltas, load-generator output, the
verdict rules, the RESULTS.md splice, and a ~5 s end-to-end smoke run (no speed is asserted).

A soak that mismeasures passes for the wrong reason, so each part is checked on known inputs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

from hardening import heyrun, pacedload, promhist, soak, soakreport, soakverdict

SCRAPE = """
# HELP kubekms_request_duration_seconds HTTP request latency by operation and algorithm.
kubekms_request_duration_seconds_bucket{algorithm="aes-256-gcm",le="0.001",operation="encrypt"} 10.0
kubekms_request_duration_seconds_bucket{algorithm="aes-256-gcm",le="0.005",operation="encrypt"} 60.0
kubekms_request_duration_seconds_bucket{algorithm="aes-256-gcm",le="0.01",operation="encrypt"} 100.0
kubekms_request_duration_seconds_bucket{algorithm="aes-256-gcm",le="+Inf",operation="encrypt"} 100.0
kubekms_request_duration_seconds_bucket{algorithm="HMAC_SHA_256",le="0.001",operation="generate-mac"} 5.0
kubekms_request_duration_seconds_bucket{algorithm="HMAC_SHA_256",le="0.005",operation="generate-mac"} 5.0
kubekms_request_duration_seconds_bucket{algorithm="HMAC_SHA_256",le="0.01",operation="generate-mac"} 5.0
kubekms_request_duration_seconds_bucket{algorithm="HMAC_SHA_256",le="+Inf",operation="generate-mac"} 5.0
kubekms_requests_total{algorithm="aes-256-gcm",operation="encrypt",status_class="2xx"} 98.0
kubekms_requests_total{algorithm="aes-256-gcm",operation="encrypt",status_class="4xx"} 2.0
kubekms_requests_total{algorithm="HMAC_SHA_256",operation="generate-mac",status_class="2xx"} 5.0
"""


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.001: 10.0, 0.005: 60.0, 0.01: 100.0, math.inf: 100.0}
    assert promhist.quantile(0.5, buckets) == pytest.approx(0.001 + 0.004 * 40 / 50)
    assert promhist.quantile(0.99, buckets) == pytest.approx(0.005 + 0.005 * 39 / 40)
    assert promhist.quantile(0.05, buckets) == pytest.approx(0.0005)  # first bucket starts at 0
    assert promhist.quantile(0.9, {0.001: 10.0, math.inf: 20.0}) == 0.001  # rank in +Inf
    assert math.isnan(promhist.quantile(0.99, {0.001: 0.0, math.inf: 0.0}))


def test_scrape_parses_and_subtracts() -> None:
    later = promhist.parse(SCRAPE)
    assert later.total() == 105 and later.errors() == 2
    assert later.merged()[0.001] == 15.0
    earlier = promhist.parse(SCRAPE.replace("} 100.0", "} 40.0").replace('"2xx"} 98.0', '"2xx"} 38.0'))
    delta = later.minus(earlier)
    assert delta.buckets["encrypt"][math.inf] == 60.0
    assert delta.requests["2xx"] == 60.0 and delta.errors() == 0


HEY_OUTPUT = """
Summary:
  Total:\t60.0012 secs
  Slowest:\t0.0420 secs

Response time histogram:
  0.001 [900]\t|■■■■
  0.042 [3]\t|

Latency distribution:
  50% in 0.0011 secs
  99% in 0.0094 secs

Status code distribution:
  [200]\t990 responses
  [503]\t7 responses

Error distribution:
  [3]\tPost "http://127.0.0.1:1/x": dial tcp 127.0.0.1:1: connect: connection refused
"""


def test_hey_summary_is_parsed() -> None:
    result = heyrun.parse("encrypt", HEY_OUTPUT)
    assert result.percentiles_ms == {50: pytest.approx(1.1), 99: pytest.approx(9.4)}
    assert result.statuses == {200: 990, 503: 7}
    assert result.requests == 1000 and result.failed == 10
    with pytest.raises(RuntimeError):
        heyrun.parse("encrypt", "flag provided but not defined")


def test_paced_result_is_parsed() -> None:
    line = (
        'PACED_RESULT {"requests":500,"duration_us":2000000,"errors":{"connect":0,"read":0,'
        '"write":0,"status":4,"timeout":1},"late":3,"max_late_ms":2.5,"latency_us":{"p50":800,'
        '"p90":1500,"p99":4200,"p99.9":9000,"max":12000,"mean":900.0}}'
    )
    result = pacedload.parse("sign", "Running 2s test\n" + line + "\n")
    assert result.failed == 5 and result.late == 3
    assert result.percentiles_ms[99] == pytest.approx(4.2)


def _row(minute: int, p99: float, rss: int, full: bool = True) -> dict[str, object]:
    return {"minute": minute, "full": full, "client_errors": 0, "server_errors": 0,
            "server_p99_ms": p99, "client_p99_ms": p99, "rss_kib": rss, "client_rps": 100.0}  # fmt: skip


def _judge(rows: list[dict[str, object]]) -> dict[str, object]:
    return soakverdict.judge({
        "minutes": rows, "target_rps": 100.0, "server_exit": 0, "capacity": {"failed": 0},
        "log": {"tracebacks": 0, "status_500": 0},
    })  # fmt: skip


def test_verdict_judges_full_minutes_against_the_median() -> None:
    steady = [_row(1, 1.0, 1000), _row(2, 1.2, 1010), _row(3, 0.9, 1020), _row(4, 50.0, 1020, full=False)]
    assert _judge(steady)["passed"] is True  # the partial minute's p99 is not judged
    climbing = [_row(1, 1.0, 1000), _row(2, 1.1, 1000), _row(3, 2.5, 1000)]
    verdict = _judge(climbing)
    assert verdict["passed"] is False and verdict["server_p99"]["ok"] is False  # type: ignore[index]
    growing = [_row(1, 1.0, 1000), _row(2, 1.0, 1060)]
    assert _judge(growing)["rss"]["ok"] is False  # type: ignore[index]


def test_record_replaces_only_the_soak_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# R\n\n## Bench\n\nkept\n\n## Soak\n\nold table\n\n*Earlier runs.* history.\n")
    soakreport.record(results, "## Soak\n\nnew table\n")
    text = results.read_text()
    assert "## Bench\n\nkept\n" in text and "old table" not in text
    assert text.endswith("## Soak\n\nnew table\n\n*Earlier runs.* history.\n")


def test_smoke_soak_runs_end_to_end() -> None:
    """Four seconds of paced mixed load: the parts agree with each other; no speed is asserted."""
    args = argparse.Namespace(seconds=4, load=0.3, probe_seconds=1, slice_seconds=2, generator="wrk")
    result = soak.soak(args)
    rows = result["minutes"]
    assert [r["minute"] for r in rows] == [1, 2] and all(r["full"] for r in rows)
    assert result["verdict"]["errors"]["ok"] is True, result["verdict"]["errors"]
    for r in rows:
        # The server counts every request wrk counted, plus at most those still in flight when
        # this slice's or the previous run's (probe: 32 connections) wrk stopped.
        in_flight = sum(pacedload.connections(share * result["target_rps"]) for share in soak.MIX.values())
        slack = 2 * in_flight + 32
        assert r["client_requests"] <= r["server_requests"] <= r["client_requests"] + slack
        assert r["client_requests"] > 0 and not math.isnan(r["server_p99_ms"])
    assert len(result["rss_samples"]) >= 1 and result["server_exit"] == 0
    assert "## Soak" in soakreport.section(result, ["--seconds", "4"])
