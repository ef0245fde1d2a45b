"""Shared pytest configuration: fixture plugins live in tests/fixtures/ and are registered here."""

from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "fixtures.callers",
    "fixtures.keymaterial",
    "fixtures.softhsm",
    "fixtures.kube",
    "fixtures.api",
    "fixtures.helm",
    "fixtures.kube_api",
    "fixtures.hardening",
]

# Tiers, marked by folder so that `pytest -m unit` (or integration, hardening, e2e) selects one;
# `kube` marks every test that runs against the emulated API server (tests/kube), wherever it is.
TIERS = frozenset({"unit", "integration", "hardening", "e2e"})
EMULATOR_FIXTURE = "kube_cluster"  # tests/fixtures/kube.py; every Kubernetes fixture builds on it


def _uses_emulator(item: pytest.Item) -> bool:
    if EMULATOR_FIXTURE in getattr(item, "fixturenames", ()):
        return True
    module = getattr(item, "module", None)  # or the test module drives tests/kube directly
    return module is not None and any(
        str(getattr(value, "__module__", None) or getattr(value, "__name__", "")).startswith("kube.")
        for value in vars(module).values()
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts if item.path.is_relative_to(tests) else ()
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
        if _uses_emulator(item):
            item.add_marker(pytest.mark.kube)
