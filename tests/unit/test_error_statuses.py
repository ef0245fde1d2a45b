"""The API edge maps every domain error to Infisical's status and `error` name (spec's error table).

kms_core's errors carry meaning only; this pins the one mapping from meaning to wire, so a new
error class without a mapping, or a changed status, fails here.
"""

from __future__ import annotations

import inspect

import pytest

import kms_core.errors as core_errors
from kms_api.http.error_replies import STATUSES, RequestTimeout, status_of
from kms_core.errors import (
    BadRequest,
    DecryptionFailed,
    DuplicateName,
    Forbidden,
    KmsError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Timeout,
    TokenError,
    Unauthorized,
    Unavailable,
    ValidationFailure,
)

CASES: list[tuple[KmsError, tuple[int, str]]] = [
    (KmsError("x"), (500, "InternalServerError")),
    (BadRequest("x"), (400, "BadRequest")),
    (DecryptionFailed(), (400, "BadRequest")),
    (DuplicateName("k", "p"), (400, "BadRequest")),
    (NotFound("x"), (404, "NotFound")),
    (ValidationFailure([]), (422, "ValidationFailure")),
    (Unauthorized("x"), (401, "UnauthorizedError")),
    (TokenError("x"), (403, "TokenError")),
    (PermissionDenied("encrypt"), (403, "PermissionDenied")),
    (Forbidden("x"), (403, "ForbiddenError")),
    (Forbidden("x", "You are not member of this project"), (403, "You are not member of this project")),
    (PayloadTooLarge("x"), (413, "PayloadTooLarge")),
    (RateLimited("x", 1.0), (429, "RateLimitExceeded")),
    (Unavailable("x"), (503, "ServiceUnavailable")),
    (Timeout("x"), (504, "GatewayTimeout")),
    (RequestTimeout("x"), (408, "RequestTimeout")),
]


@pytest.mark.parametrize(("exc", "expected"), CASES, ids=lambda v: type(v).__name__)
def test_each_error_has_infisicals_status_and_name(exc: KmsError, expected: tuple[int, str]) -> None:
    assert status_of(exc) == expected


def test_core_errors_carry_no_http_status() -> None:
    for _, cls in inspect.getmembers(core_errors, inspect.isclass):
        if issubclass(cls, KmsError):
            assert "status" not in vars(cls) and "error" not in vars(cls), cls.__name__


def test_every_core_error_class_is_mapped_or_inherits_a_mapping() -> None:
    for _, cls in inspect.getmembers(core_errors, inspect.isclass):
        if issubclass(cls, KmsError) and cls is not KmsError:
            assert any(base in STATUSES for base in cls.__mro__ if base is not KmsError), cls.__name__
