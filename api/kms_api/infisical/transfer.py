"""Key material transfer handlers: private-key export, bulk export, bulk import (spec §2.13-2.15).

Security property: export is gated in the service by the `export-private-key` permission and the
key's `isExportable` flag (default false); import material is handed to the service as bytes and
never echoed, not even in per-entry error messages.
"""

from __future__ import annotations

from typing import Any

from kms_api.infisical.encoding import b64
from kms_api.pipeline.call import Call
from kms_core.outcome import Outcome
from kms_core.transfer import ExportList, ImportEntry, ImportErrors, KeyList

Json = dict[str, Any]


async def private_key(call: Call) -> Outcome[bytes]:
    return await call.service.export_private_key(call.caller, call.key_id)


def private_key_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {"privateKey": b64(outcome.result)}


async def bulk_export(call: Call) -> Outcome[ExportList]:
    key_ids = list(dict.fromkeys(call.body["keyIds"]))  # de-duplicate, keep order
    return await call.service.bulk_export(call.caller, key_ids)


def bulk_export_reply(call: Call, outcome: Outcome[ExportList]) -> Json:
    entries = []
    for item in outcome.result:
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


async def bulk_import(call: Call) -> Outcome[tuple[KeyList, ImportErrors]]:
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
    return await call.service.bulk_import(call.caller, call.body["projectId"], entries)


def bulk_import_reply(call: Call, outcome: Outcome[tuple[KeyList, ImportErrors]]) -> Json:
    imported, errors = outcome.result
    return {
        "keys": [{"id": k.id, "name": k.name} for k in imported],
        "errors": [{"name": name, "message": message} for name, message in errors],
    }
