"""KubeKMS's lifecycle extensions of the Infisical dialect: a key's versions and policy, and the
keys deleted within their recovery window (list, restore, purge). README "Key lifecycle".

The versions route has the shape of Infisical's side branch A (spec §2.19:
`{keyId, currentVersion, versions:[{id, version, createdAt}]}`) with two documented additions:
each version's `state` and a top-level `policy`. A version's `id` is a UUID derived from the key
id and the version number (`uuid5(keyId, "version-<n>")`): stable across processes, modes,
restores and restarts, and shaped like side branch A's row ids.

Security property: replies are built from allow-lists of record fields (`encoding.key_json` and
the policy's numbers and dates); no material, and nothing of another project: the service asks
the policy (READ for versions, RESTORE for deleted keys) before a record is returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from kms_api.infisical.encoding import KEY_DOC, js_date, key_json
from kms_api.pipeline.call import Call
from kms_core import lifecycle
from kms_core.lifecycle import VersionState
from kms_core.model import DeletedKey, Key
from kms_core.outcome import Outcome
from kms_core.service import VersionInfo

Json = dict[str, Any]


def version_id(key_id: str, version: int) -> str:
    """The stable id of one version of a key (a name-based UUID: same inputs, same id)."""
    return str(uuid.uuid5(uuid.UUID(key_id), f"version-{version}"))


def policy_json(key: Key) -> Json:
    """The key's lifecycle policy as the versions route shows it."""
    due = lifecycle.next_rotation(key)
    last = key.rotated_at if key.version > 1 else None
    return {
        "rotationPeriod": lifecycle.format_duration(key.rotation_period) if key.rotation_period else None,
        "minDecryptionVersion": key.min_decryption_version,
        "minEncryptionVersion": key.min_encryption_version,
        "minAvailableVersion": key.min_available_version,
        # A disabled key is never rotated on schedule, so it has no next rotation.
        "nextRotationAt": js_date(due) if due is not None and not key.is_disabled else None,
        "lastRotatedAt": js_date(last) if last is not None else None,
    }


async def versions(call: Call) -> Outcome[tuple[Key, Sequence[VersionInfo]]]:
    return await call.service.versions(call.caller, call.key_id)


def versions_reply(call: Call, outcome: Outcome[tuple[Key, Sequence[VersionInfo]]]) -> Json:
    key, infos = outcome.result
    return {
        "keyId": key.id,
        "currentVersion": key.version,
        "versions": [
            {"id": version_id(key.id, n), "version": n, "createdAt": js_date(created), "state": state.value}
            for n, created, state in infos
        ],
        "policy": policy_json(key),
    }


def deleted_json(deleted: DeletedKey) -> Json:
    """A deleted key: Infisical's key object, when it was deleted and when it will be purged."""
    return {
        **key_json(deleted.key),
        "deletedAt": js_date(deleted.deleted_at),
        "purgeAt": js_date(deleted.purge_at),
    }


async def deleted_keys(call: Call) -> Outcome[Sequence[DeletedKey]]:
    return await call.service.deleted(call.caller, call.query["projectId"])


def deleted_keys_reply(call: Call, outcome: Outcome[Sequence[DeletedKey]]) -> Json:
    return {"keys": [deleted_json(d) for d in outcome.result], "totalCount": len(outcome.result)}


async def restore(call: Call) -> Outcome[Key]:
    return await call.service.restore(call.caller, call.key_id, call.body["name"])


async def purge(call: Call) -> Outcome[DeletedKey]:
    return await call.service.purge(call.caller, call.key_id)


def purge_reply(call: Call, outcome: Outcome[DeletedKey]) -> Json:
    return {"key": deleted_json(outcome.result)}


# -- OpenAPI documents of the replies ------------------------------------------------------------

_DATE: Final = {"type": "string", "format": "date-time"}
_NULLABLE_DATE: Final = {**_DATE, "nullable": True}
_COUNT: Final = {"type": "integer", "minimum": 0}

VERSIONS_DOC: Final[Json] = {
    "type": "object",
    "properties": {
        "keyId": {"type": "string", "format": "uuid"},
        "currentVersion": {"type": "integer", "minimum": 1},
        "versions": {
            "type": "array",
            "description": "Every stored version, newest first",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid", "description": 'uuid5(keyId, "version-<n>")'},
                    "version": {"type": "integer", "minimum": 1},
                    "createdAt": _DATE,
                    "state": {"type": "string", "enum": [s.value for s in VersionState]},
                },
                "required": ["id", "version", "createdAt", "state"],
            },
        },
        "policy": {
            "type": "object",
            "properties": {
                "rotationPeriod": {"type": "string", "nullable": True, "example": "24h"},
                "minDecryptionVersion": _COUNT,
                "minEncryptionVersion": _COUNT,
                "minAvailableVersion": _COUNT,
                "nextRotationAt": _NULLABLE_DATE,
                "lastRotatedAt": _NULLABLE_DATE,
            },
            "required": ["rotationPeriod", "minDecryptionVersion", "minEncryptionVersion",
                         "minAvailableVersion", "nextRotationAt", "lastRotatedAt"],
        },
    },
    "required": ["keyId", "currentVersion", "versions", "policy"],
}  # fmt: skip

DELETED_KEY_DOC: Final[Json] = {
    **KEY_DOC,
    "properties": {**KEY_DOC["properties"], "deletedAt": _DATE, "purgeAt": _DATE},
    "required": [*KEY_DOC["required"], "deletedAt", "purgeAt"],
}
