"""Key lifecycle views: create, list, get (by id and by name), update, delete, rotate (spec §2.1-2.6, §2.16).

Security property: responses carry only the key record (`wire.key_json`), never material.
"""

from __future__ import annotations

from typing import Any

from kms_api.call import Call
from kms_api.wire import key_json
from kms_core.model import KeySpec
from kms_core.stores.base import ListQuery

Json = dict[str, Any]


def _key(call: Call, key: Any) -> Json:
    call.note_algorithm(key.algorithm.value)
    return {"key": key_json(key)}


async def create_key(call: Call) -> Json:
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
    return _key(call, await call.service.create(spec, call.authz))


async def list_keys(call: Call) -> Json:
    q = call.query
    query = ListQuery(
        project_id=q["projectId"],
        offset=q["offset"],
        limit=q["limit"],
        search=q["search"] or None,
        descending=q["orderDirection"] == "desc",
    )
    keys, total = await call.service.list(query, call.authz)
    return {"keys": [key_json(k) for k in keys], "totalCount": total}


async def get_key(call: Call) -> Json:
    return _key(call, await call.service.get(call.key_id, call.authz))


async def get_key_by_name(call: Call) -> Json:
    key = await call.service.get_by_name(call.query["projectId"], call.params["keyName"], call.authz)
    return _key(call, key)


async def update_key(call: Call) -> Json:
    b = call.body
    key = await call.service.update(
        call.key_id,
        call.authz,
        name=b["name"],
        description=b["description"],
        is_disabled=b["isDisabled"],
        has_delete_protection=b["hasDeleteProtection"],
    )
    return _key(call, key)


async def delete_key(call: Call) -> Json:
    return _key(call, await call.service.delete(call.key_id, call.authz))


async def rotate_key(call: Call) -> Json:
    return _key(call, await call.service.rotate(call.key_id, call.authz))
