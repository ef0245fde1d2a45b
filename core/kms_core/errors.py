"""One error taxonomy for every KubeKMS component.

Each error says what went wrong (not found, bad request, permission denied, ...), nothing about
transport: the mapping to HTTP status codes and Infisical `error` names lives at the API edge
(`kms_api.http.error_replies`), so a second dialect can map the same meaning its own way. Security property:
messages are fixed texts or ids and names supplied by the caller, never key material or plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class KmsError(Exception):
    """Base class: a failure reported to the client (as an internal error unless a subclass says more)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KmsError):
    """The request is well-formed but cannot be served."""


class DecryptionFailed(BadRequest):
    """No key version authenticates the ciphertext. One opaque message for every cause (no oracle)."""

    def __init__(self) -> None:
        super().__init__("Ciphertext cannot be decrypted with this KMS key.")


class DuplicateName(BadRequest):
    """A key with this name already exists in the project."""

    def __init__(self, name: str, project_id: str) -> None:
        super().__init__(
            f'A KMS key with the name "{name}" already exists for the project with ID "{project_id}"'
        )
        self.name = name
        self.project_id = project_id


class NotFound(KmsError):
    """The key (or project) does not exist."""



@dataclass(frozen=True)
class Issue:
    """One schema problem in Infisical's validation shape: `{code, message, path}` plus the code's own
    fields as zod v4 reports them (`expected`, `values`, `origin`, `minimum`, `format`, ...)."""

    code: str
    message: str
    path: Sequence[str | int] = field(default_factory=tuple)
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.details, "code": self.code, "path": list(self.path), "message": self.message}


class ValidationFailure(KmsError):
    """Schema validation failed (`issues` lists each problem)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(i.message for i in issues) or "Validation failed")
        self.issues = list(issues)


class Unauthorized(KmsError):
    """No credentials were presented."""


class TokenError(KmsError):
    """Credentials were presented but are invalid or expired."""


class PermissionDenied(KmsError):
    """The identity lacks the action on the key's project."""

    def __init__(self, action: str, subject: str = "cmek") -> None:
        super().__init__(f"You are not allowed to {action} on {subject}")
        self.action = action


class Forbidden(KmsError):
    """A refusal named by its `reason` (e.g. the identity is not a member of the project)."""

    def __init__(self, message: str, reason: str = "ForbiddenError") -> None:
        super().__init__(message)
        # Infisical names some refusals by their cause (e.g. "You are not member of this project").
        self.reason = reason


class PayloadTooLarge(KmsError):
    """The request body exceeds the route's limit."""


class RateLimited(KmsError):
    """The identity exceeded its request budget; it may retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(KmsError):
    """A dependency (store, HSM, Kubernetes API) is unavailable; the client may retry."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Timeout(KmsError):
    """A dependency did not answer in time."""


class SealerMismatch(Exception):
    """The configured root key / HSM key is not the one that sealed the stored material.

    Raised at startup; the process must refuse to start and must not write anything.
    """

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"kek_id mismatch: the store was sealed with kek_id {expected} but the configured "
            f"key has kek_id {actual}. Refusing to start; nothing was written. Configure the "
            "original ROOT_ENCRYPTION_KEY or HSM key."
        )
        self.expected = expected
        self.actual = actual


class ConfigError(Exception):
    """Invalid or missing configuration detected at startup."""
