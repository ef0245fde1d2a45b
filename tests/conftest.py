"""Shared pytest configuration: fixture plugins live in tests/fixtures/ and are registered here."""

pytest_plugins: list[str] = [
    "fixtures.keymaterial",
    "fixtures.softhsm",
    "fixtures.kube",
    "fixtures.api",
    "fixtures.helm",
    "fixtures.kube_api",
    "fixtures.hardening",
]
