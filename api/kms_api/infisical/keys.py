"""Key record handlers: create, list, get (by id, by name), update, delete, rotate (spec §2.1-2.6, §2.16).

The lifecycle extensions (versions, deleted keys) are in `kms_api.infisical.lifecycle`.

Security property: replies carry only the key record (`encoding.key_json`), never material.
"""

from __future__ import annotations

from typing import Any

from kms_api.infisical.encoding import key_json
from kms_api.pipeline.call import Call
from kms_core.lifecycle import PolicyChange
from kms_core.model import Key, KeySpec
from kms_core.outcome import Outcome
from kms_core.stores.base import ListQuery
from kms_core.transfer import KeyList

Json = dict[str, Any]


def key_reply(call: Call, outcome: Outcome[Key]) -> Json:
    """Every route that returns one key record."""
    return {"key": key_json(outcome.result)}


async def create_key(call: Call) -> Outcome[Key]:
    b = call.body
    spec = KeySpec(
        project_id=b["projectId"],
        name=b["name"],
        key_usage=b["keyUsage"],
        algorithm=b["algorithm"],
        description=b["description"],
        is_exportable=b["isExportable"],
        has_delete_protection=b["hasDeleteProtection"],
    )
    return await call.service.create(call.caller, spec)


async def list_keys(call: Call) -> Outcome[tuple[KeyList, int]]:
    q = call.query
    query = ListQuery(
        project_id=q["projectId"],
        offset=q["offset"],
        limit=q["limit"],
        search=q["search"] or None,
        descending=q["orderDirection"] == "desc",
    )
    return await call.service.list(call.caller, query)


def list_reply(call: Call, outcome: Outcome[tuple[KeyList, int]]) -> Json:
    keys, total = outcome.result
    return {"keys": [key_json(k) for k in keys], "totalCount": total}


async def get_key(call: Call) -> Outcome[Key]:
    return await call.service.get(call.caller, call.key_id)


async def get_key_by_name(call: Call) -> Outcome[Key]:
    return await call.service.get_by_name(call.caller, call.query["projectId"], call.params["keyName"])


async def update_key(call: Call) -> Outcome[Key]:
    """Infisical's update, plus KubeKMS's lifecycle fields (README "Key lifecycle").

    The policy goes first and is checked whole (bounds and trim together) before anything is
    stored, so a refused bound leaves the key as it was; the reply stays Infisical's key object."""
    b = call.body
    change = PolicyChange(
        rotation_period=b["rotationPeriod"],
        min_decryption_version=b["minDecryptionVersion"],
        min_encryption_version=b["minEncryptionVersion"],
    )
    trim_to = b["minAvailableVersion"]
    if not change.is_empty() or trim_to is not None:
        await call.service.set_policy(call.caller, call.key_id, change, trim_to=trim_to)
    return await call.service.update(
        call.caller,
        call.key_id,
        name=b["name"],
        description=b["description"],
        is_disabled=b["isDisabled"],
        has_delete_protection=b["hasDeleteProtection"],
    )


async def delete_key(call: Call) -> Outcome[Key]:
    return await call.service.delete(call.caller, call.key_id)


async def rotate_key(call: Call) -> Outcome[Key]:
    return await call.service.rotate(call.caller, call.key_id)
