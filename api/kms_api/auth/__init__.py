"""Authentication and authorisation backends (embedded tokens, Kubernetes TokenReview + SAR)."""

from kms_api.auth.base import AuthBackend, Identity

__all__ = ["AuthBackend", "Identity"]
