"""Declarative request schemas: fields that validate input and describe themselves in OpenAPI,
the per-mode `projectId` rule, and /openapi.json generated from the route declarations.

Security property: nothing unvalidated reaches a handler, and issue messages never echo payloads.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "base64_fields",
    "composite_fields",
    "fields",
    "number_fields",
    "openapi",
    "projects",
]
