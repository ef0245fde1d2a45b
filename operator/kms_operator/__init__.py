"""The KubeKMS operator: turns each KmsKey into sealed key material in a Secret (Kopf-based)."""

# The package's face: its modules (tests/unit/test_package_faces.py keeps this list exact).
__all__ = [
    "adoption",
    "clock",
    "context",
    "deletion",
    "events",
    "handlers",
    "keycontext",
    "keyindex",
    "leadership",
    "liveness",
    "overdue",
    "policy",
    "purge",
    "reconcile",
    "rejections",
    "release",
    "rootkey",
    "rotation",
    "secretwatch",
    "settings",
    "startup",
    "status",
    "workqueue",
]
