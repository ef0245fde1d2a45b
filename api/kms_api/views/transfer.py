"""Key material transfer views: private-key export, bulk export, bulk import (spec §2.13-2.15).

Security property: export is gated in the service by the `export-private-key` permission and the
key's `isExportable` flag (default false); import material is handed to the service as bytes and
never echoed, not even in per-entry error messages.
"""

from __future__ import annotations

from typing import Any

from kms_api.call import Call
from kms_api.wire import b64
from kms_core.transfer import ImportEntry

Json = dict[str, Any]


async def private_key(call: Call) -> Json:
    return {"privateKey": b64(await call.service.export_private_key(call.key_id, call.authz))}


async def bulk_export(call: Call) -> Json:
    key_ids = list(dict.fromkeys(call.body["keyIds"]))  # de-duplicate, keep order
    exported = await call.service.bulk_export(key_ids, call.authz)
    entries = []
    for item in exported:
        entry = {
            "keyId": item.key.id,
            "name": item.key.name,
            "keyUsage": item.key.key_usage.value,
            "algorithm": item.key.algorithm.value,
            "privateKey": b64(item.private_key),
        }
        if item.public_key is not None:
            entry["publicKey"] = b64(item.public_key)
        entries.append(entry)
    return {"keys": entries}


async def bulk_import(call: Call) -> Json:
    entries = [
        ImportEntry(
            name=e["name"],
            key_usage=e["keyUsage"],
            algorithm=e["algorithm"],
            material=e["keyMaterial"],
            is_exportable=e["isExportable"],
            has_delete_protection=e["hasDeleteProtection"],
        )
        for e in call.body["keys"]
    ]
    imported, errors = await call.service.bulk_import(call.body["projectId"], entries, call.authz)
    return {
        "keys": [{"id": k.id, "name": k.name} for k in imported],
        "errors": [{"name": name, "message": message} for name, message in errors],
    }
