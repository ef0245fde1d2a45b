"""KubeKMS HTTP API: an aiohttp service wire-compatible with Infisical's KMS API and Vault Transit."""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "app",
    "appstate",
    "auth",
    "devserver",
    "http",
    "infisical",
    "kube",
    "modes",
    "observe",
    "pipeline",
    "schema",
    "settings",
    "testclock",
    "transit",
]
