"""The Infisical KMS dialect: its route table, request schemas, handlers and reply encoders.

A handler calls one service method with the caller's identity and returns its `Outcome`; an
encoder turns that outcome into the reply body. Another dialect (Vault Transit) gets its own
sibling package built from the same `kms_api.pipeline` and `kms_api.schema` parts.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "crypto",
    "encoding",
    "keys",
    "lifecycle",
    "routes",
    "schemas",
    "system",
    "transfer",
]
