"""The Vault/OpenBao Transit dialect under `/v1/`: the same keys as the Infisical dialect, with
Vault's envelope, errors, key types and `vault:v<N>:` framing (ARCHITECTURE.md §8).

Built from the same `kms_api.pipeline` as the Infisical dialect, so its routes get the same
authentication, audit, metrics and limits; every behaviour is settled against a real OpenBao
by tests/transit.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "backup",
    "backup_format",
    "byok",
    "crypto",
    "envelope",
    "export",
    "framing",
    "imports",
    "inputs",
    "keys",
    "lifecycle",
    "login",
    "routes",
    "signing",
    "system",
    "types",
    "wrapping",
]
