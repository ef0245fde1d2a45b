"""`::` listens on both address families: the API, its metrics and the operator's liveness.

The chart's default (`--host ::`, liveness `http://[::]:8081/healthz`) must answer IPv4 clients
and kubelet probes as well as IPv6 ones; asyncio alone would bind `::` IPv6-only. Each server is
started for real and called over 127.0.0.1 and ::1.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.api import free_port, start_api
from fixtures.kube import OperatorProcess
from kms_core.listener import dual_stack_socket, is_any
from kms_operator import liveness

LOOPBACKS = ("127.0.0.1", "[::1]")


def status(host: str, port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
        return int(resp.status)


def test_a_dual_stack_socket_accepts_ipv4_and_ipv6_clients() -> None:
    with dual_stack_socket(0) as server:
        server.setblocking(True)
        port = server.getsockname()[1]
        assert server.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family) as client:
                client.connect((host, port))
                accepted, _ = server.accept()
                accepted.close()
    assert is_any("::") and is_any("") and not is_any("127.0.0.1") and not is_any("::1")


def test_the_api_and_its_metrics_listen_on_both_families(tmp_path: Path) -> None:
    metrics = free_port()
    api = start_api(tmp_path / "data", tmp_path / "api.log", "--host", "::", "--metrics-port", str(metrics))
    try:
        assert api.proc.poll() is None, api.logs()
        for host in LOOPBACKS:
            assert status(host, api.port, "/healthz") == 200
            assert status(host, metrics, "/metrics") == 200
    finally:
        assert api.stop() == 0


def test_the_api_workers_share_a_dual_stack_port(tmp_path: Path) -> None:
    api = start_api(tmp_path / "data", tmp_path / "api.log", "--host", "::", "--workers", "2",
                    "--metrics-port", "0")
    try:
        for host in LOOPBACKS * 3:
            assert status(host, api.port, "/healthz") == 200
    finally:
        assert api.stop() == 0


def test_the_liveness_endpoint_binds_both_families() -> None:
    port = free_port()

    async def probe() -> list[int]:
        runner = await liveness.serve(f"http://[::]:{port}/healthz")
        try:
            return [await asyncio.to_thread(status, host, port, "/healthz") for host in LOOPBACKS]
        finally:
            await runner.cleanup()

    assert asyncio.run(probe()) == [200, 200]


def test_the_operator_serves_liveness_on_both_families(
    kube_operator_factory: Callable[..., OperatorProcess],
) -> None:
    port = free_port()
    kube_operator_factory(KUBEKMS_LIVENESS=f"http://[::]:{port}/healthz").start()
    for host in LOOPBACKS:
        assert status(host, port, "/healthz") == 200


@pytest.mark.parametrize("endpoint", ["https://[::]:8081/healthz", "http://[::]/healthz"])
def test_a_liveness_endpoint_it_cannot_serve_is_a_configuration_error(endpoint: str) -> None:
    from kms_core.errors import ConfigError

    with pytest.raises(ConfigError, match="KUBEKMS_LIVENESS"):
        asyncio.run(liveness.serve(endpoint))
