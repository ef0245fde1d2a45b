"""The Kubernetes key store of the API: KmsKeys and operator Secrets behind the `KeyStore` protocol.

Built (with the ServiceAccount auth backend sharing its client) by `kms_api.modes.kubernetes`;
this package never imports a mode or an auth backend (import-linter contract in pyproject.toml).
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "custody",
    "events",
    "kmskey",
    "nameindex",
    "store",
    "writes",
]
