"""KubeKMS core: key model, cryptography, sealing and stores shared by the API and the operator.

Security property: this package is the only place that ever holds unsealed key material; it
never imports kopf or aiohttp, so neither framework can reach material except through it.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "algorithms",
    "batch",
    "batched_metrics",
    "ciphertext",
    "derivation",
    "errors",
    "executor",
    "gcmusage",
    "grant",
    "identity",
    "keyring",
    "keyring_loader",
    "keyring_lru",
    "lifecycle",
    "listener",
    "material",
    "metrics",
    "model",
    "outcome",
    "ownership",
    "policy",
    "primitives",
    "schedule",
    "sealing",
    "service",
    "signing_options",
    "stores",
    "transfer",
]
