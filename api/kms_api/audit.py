"""The audit trail: one structured event per operation and per denial, on the logger `kubekms.audit`.

Event types are Infisical's (spec §6: create-cmek, cmek-encrypt, ...). Each event carries time,
type, outcome (success | denied | failure), status, error name, identity id, project, key id,
reqId and a small allow-listed metadata object (names, algorithms, versions, validity flags).

Security property: events are built from an allow-list, never from request or response bodies
wholesale: plaintexts, ciphertexts, signatures, MACs, shared secrets, exported material and
tokens never reach the audit log (Infisical logs signatures and MACs; we deliberately do not).
Login events, successful or not, carry the client id and the client address, never the secret.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from aiohttp import web

from kms_api.appkeys import exchange_of
from kms_api.fields import is_uuid
from kms_api.jsonlines import CLOCK, EventLog
from kms_core.errors import KmsError

AUDIT_LOG = logging.getLogger("kubekms.audit")
# Written without a LogRecord when the process's JSON handler is the only listener (kms_api.logs).
AUDIT_EVENTS = EventLog(AUDIT_LOG)

LOGIN_EVENT: Final = "login-identity-universal-auth"
# operationId -> Infisical audit event type. Routes not listed (health, OpenAPI) are not audited.
EVENTS: Final = {
    "createKmsKey": "create-cmek",
    "updateKmsKey": "update-cmek",
    "rotateKmsKey": "rotate-cmek",
    "deleteKmsKey": "delete-cmek",
    "listKmsKeys": "get-cmeks",
    "getKmsKeyById": "get-cmek",
    "getKmsKeyByName": "get-cmek",
    "encryptWithKmsKey": "cmek-encrypt",
    "decryptWithKmsKey": "cmek-decrypt",
    "signWithKmsKey": "cmek-sign",
    "verifyWithKmsKey": "cmek-verify",
    "generateMacWithKmsKey": "cmek-generate-mac",
    "verifyMacWithKmsKey": "cmek-verify-mac",
    "deriveSharedSecretWithKmsKey": "cmek-derive-shared-secret",
    "listKmsKeySigningAlgorithms": "cmek-list-signing-algorithms",
    "getKmsKeyPublicKey": "cmek-get-public-key",
    "getKmsKeyPrivateKey": "cmek-get-private-key",
    "bulkExportKmsKeyPrivateKeys": "cmek-bulk-export-private-keys",
    "bulkImportKmsKeys": "cmek-bulk-import-keys",
    "universalAuthLogin": LOGIN_EVENT,
}

DENIED_STATUSES: Final = frozenset({401, 403, 429})
# Response fields that are safe to record (never payloads, signatures, MACs or material).
_SAFE_RESULT_FIELDS: Final = ("signingAlgorithm", "signatureValid", "macAlgorithm", "macValid")


def _metadata(event: str, body: dict[str, Any], result: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if not isinstance(result, dict):
        return meta
    key = result.get("key")
    if isinstance(key, dict):
        meta["keyName"] = key.get("name")
        if event in ("create-cmek", "rotate-cmek"):
            meta["version"] = key.get("version")
            meta["algorithm"] = key.get("algorithm")
        if event == "create-cmek":
            meta["isExportable"] = key.get("isExportable")
            meta["hasDeleteProtection"] = key.get("hasDeleteProtection")
    if event == "update-cmek":
        meta["changed"] = sorted(k for k, v in body.items() if v is not None)
    if event == "get-cmeks":
        meta["keyIds"] = [k.get("id") for k in result.get("keys", [])]
    if event == "cmek-bulk-export-private-keys":
        meta["keys"] = [{"keyId": k.get("keyId"), "name": k.get("name")} for k in result.get("keys", [])]
    if event == "cmek-bulk-import-keys":
        meta["keyNames"] = [k.get("name") for k in result.get("keys", [])]
        meta["failedKeyNames"] = [e.get("name") for e in result.get("errors", [])]
    for name in _SAFE_RESULT_FIELDS:
        if name in result:
            meta[name] = result[name]
    return meta


_MAX_CLIENT_ID: Final = 128  # client ids are UUIDs; a longer value is cut so it cannot flood the log


def _login_metadata(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """Who tried to log in, from where: the client id (an identifier, not a secret) and the client
    address, whatever the outcome. The client secret is never read here."""
    client_id = body.get("clientId")
    return {
        "clientId": client_id[:_MAX_CLIENT_ID] if isinstance(client_id, str) else None,
        "clientAddress": request.remote,
    }


def _key_id(request: web.Request, result: Any) -> str | None:
    value = request.match_info.get("keyId")
    if isinstance(value, str) and is_uuid(value):
        return value
    if isinstance(result, dict) and isinstance(result.get("key"), dict):
        found = result["key"].get("id")
        return found if isinstance(found, str) else None
    return None


def _event_metadata(
    request: web.Request, event: str, body: dict[str, Any], result: Any, exc: BaseException | None
) -> dict[str, Any]:
    if event == LOGIN_EVENT:
        return _login_metadata(request, body)
    return _metadata(event, body, result) if exc is None else {}


def record(
    request: web.Request,
    operation: str,
    *,
    body: dict[str, Any] | None = None,
    result: Any = None,
    exc: BaseException | None = None,
) -> None:
    """Emit the audit event of one finished request to `operation` (an operationId)."""
    event = EVENTS.get(operation)
    if event is None or not AUDIT_EVENTS.enabled:
        return
    if exc is None:
        status, error, outcome = 200, None, "success"
    else:
        status = exc.status if isinstance(exc, KmsError | web.HTTPException) else 500
        error = exc.error if isinstance(exc, KmsError) else type(exc).__name__
        outcome = "denied" if status in DENIED_STATUSES else "failure"
    exchange = exchange_of(request)
    exchange.audited = True
    resource = request.match_info.route.resource
    took = round((time.perf_counter() - exchange.started) * 1000, 3) if exchange.started else None
    identity = exchange.identity
    project = exchange.project
    if project is None and isinstance(result, dict) and isinstance(result.get("key"), dict):
        project = result["key"].get("projectId")
    AUDIT_EVENTS.emit(
        "audit",
        {
            "time": CLOCK.now(),
            "type": event,
            "outcome": outcome,
            "status": status,
            "error": error,
            "identity": identity.id if identity is not None else None,
            "project": project,
            "keyId": _key_id(request, result),
            "reqId": exchange.req_id or None,
            # The access fields, so an audited request needs no second line (kms_api.logs).
            "method": request.method,
            "route": resource.canonical if resource is not None else None,
            "duration_ms": took,  # until the reply was ready (the access line's ends after sending)
            "metadata": _event_metadata(request, event, body or {}, result, exc),
        },
    )
