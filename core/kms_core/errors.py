"""One error taxonomy for every KubeKMS component.

Each error carries the HTTP status and the Infisical `error` name the API maps it to, so views
never build error JSON themselves. Security property: messages are fixed texts or ids and names
supplied by the caller, never key material or plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class KmsError(Exception):
    """Base class: a failure the API reports to the client with `status` and `error`."""

    status: int = 500
    error: str = "InternalServerError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KmsError):
    """The request is well-formed but cannot be served (400 BadRequest)."""

    status = 400
    error = "BadRequest"


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
    """The key (or project) does not exist (404 NotFound)."""

    status = 404
    error = "NotFound"


@dataclass(frozen=True)
class Issue:
    """One schema problem in Infisical's 422 shape: `{code, message, path}` plus the code's own
    fields as zod v4 reports them (`expected`, `values`, `origin`, `minimum`, `format`, ...)."""

    code: str
    message: str
    path: Sequence[str | int] = field(default_factory=tuple)
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.details, "code": self.code, "path": list(self.path), "message": self.message}


class ValidationFailure(KmsError):
    """Schema validation failed (422 ValidationFailure; `message` is the list of issues)."""

    status = 422
    error = "ValidationFailure"

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(i.message for i in issues) or "Validation failed")
        self.issues = list(issues)


class Unauthorized(KmsError):
    """No credentials were presented (401)."""

    status = 401
    error = "UnauthorizedError"


class TokenError(KmsError):
    """Credentials were presented but are invalid or expired (403 TokenError, as Infisical)."""

    status = 403
    error = "TokenError"


class PermissionDenied(KmsError):
    """The identity lacks the action on the key's project (403 PermissionDenied)."""

    status = 403
    error = "PermissionDenied"

    def __init__(self, action: str, subject: str = "cmek") -> None:
        super().__init__(f"You are not allowed to {action} on {subject}")
        self.action = action


class Forbidden(KmsError):
    """A generic refusal with a custom `error` name (403)."""

    status = 403

    def __init__(self, message: str, error: str = "ForbiddenError") -> None:
        super().__init__(message)
        self.error = error


class PayloadTooLarge(KmsError):
    """The request body exceeds the route's limit (413)."""

    status = 413
    error = "PayloadTooLarge"


class RateLimited(KmsError):
    """The identity exceeded its request budget (429 RateLimitExceeded)."""

    status = 429
    error = "RateLimitExceeded"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(KmsError):
    """A dependency (store, HSM, Kubernetes API) is unavailable; the client may retry (503)."""

    status = 503
    error = "ServiceUnavailable"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Timeout(KmsError):
    """A dependency did not answer in time (504)."""

    status = 504
    error = "GatewayTimeout"


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
