"""Fixtures for the Vault Transit dialect's tests: a fresh OpenBao (the reference) and a fresh
KubeKMS per test module (tests/transit/servers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import KubeKms, OpenBao, start_kubekms, start_openbao, stop_openbao


@pytest.fixture(scope="module")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    yield server
    stop_openbao(server)


@pytest.fixture(scope="module")
def kubekms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeKms]:
    server = start_kubekms(tmp_path_factory.mktemp("kubekms"))
    yield server
    assert server.process is not None
    server.process.stop()
