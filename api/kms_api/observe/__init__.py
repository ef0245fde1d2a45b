"""What the API tells operators: audit events, access and application logs (JSON lines), and
Prometheus metrics.

Security property: events, log records and metric labels carry ids, names and outcomes, never
key material, payloads or tokens.
"""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "audit",
    "jsonlines",
    "logs",
    "metrics",
]
