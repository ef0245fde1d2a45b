"""Kubernetes mode of the API: KmsKeys and operator Secrets as the key store, ServiceAccount auth.

Entry point: `kms_api.kube.backend.build(settings) -> (KeyStore, AuthBackend)`; use
`kms_kube.config.in_cluster()` to pick this mode by default inside a pod. (Nothing is imported
here so that `kms_api.auth.kubernetes` can use the client without an import cycle.)
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "backend",
    "custody",
    "events",
    "kmskey",
    "nameindex",
    "store",
    "ttlcache",
    "writes",
]
