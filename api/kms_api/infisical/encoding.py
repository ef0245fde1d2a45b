"""Response encoding: the key object of spec §1.4, dates as JS `Date.toJSON()`, base64 payloads.

Security property: `key_json` is an allow-list of record fields; material can never reach it
(records hold none), and `isReserved` is never sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import pybase64

from kms_core.model import Key


def js_date(moment: datetime) -> str:
    """`2025-01-31T10:11:12.345Z`: UTC, millisecond precision, like JavaScript's Date.toJSON()."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def b64(data: bytes) -> str:
    """Standard padded base64 (pybase64's SIMD encoder: ~10x binascii's on a 4 KiB payload)."""
    return pybase64.b64encode_as_string(data)


def key_json(key: Key) -> dict[str, Any]:
    """The CmekSchema object: both `algorithm` and its deprecated alias `encryptionAlgorithm`."""
    return {
        "id": key.id,
        "name": key.name,
        "description": key.description,
        "isDisabled": key.is_disabled,
        "orgId": key.org_id,
        "projectId": key.project_id,
        "keyUsage": key.key_usage.value,
        "createdAt": js_date(key.created_at),
        "updatedAt": js_date(key.updated_at),
        "version": key.version,
        "encryptionAlgorithm": key.algorithm.value,
        "algorithm": key.algorithm.value,
        "isExportable": key.is_exportable,
        "hasDeleteProtection": key.has_delete_protection,
        "kmipMetadata": None,
    }


_DATE: Final = {"type": "string", "format": "date-time", "example": "2025-01-31T10:11:12.345Z"}

KEY_DOC: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string"},
        "description": {"type": "string", "nullable": True},
        "isDisabled": {"type": "boolean"},
        "orgId": {"type": "string", "format": "uuid"},
        "projectId": {"type": "string"},
        "keyUsage": {"type": "string"},
        "createdAt": _DATE,
        "updatedAt": _DATE,
        "version": {"type": "integer"},
        "algorithm": {"type": "string"},
        "isExportable": {"type": "boolean"},
        "hasDeleteProtection": {"type": "boolean"},
        "kmipMetadata": {"type": "object", "nullable": True},
    },
    "required": [
        "id",
        "name",
        "isDisabled",
        "orgId",
        "projectId",
        "keyUsage",
        "createdAt",
        "updatedAt",
        "version",
        "algorithm",
    ],
}
