"""The audit trail: one structured event per operation and per denial, on the logger `kubekms.audit`.

Event types are Infisical's (spec §6: create-cmek, cmek-encrypt, ...) and each route declares its
own (`kms_api.pipeline.route.Audit`). Each event carries time, type, outcome (success | denied | failure),
status, error name, identity id, project, key id, reqId and a small allow-listed metadata object
(names, algorithms, versions, validity flags), built by the `describe` functions below from the
operation's `kms_core.outcome.Outcome`: the key record it used and its result.

Security property: events are built from an allow-list, never from request or response bodies
wholesale: plaintexts, ciphertexts, signatures, MACs, shared secrets, exported material and
tokens never reach the audit log (Infisical logs signatures and MACs; we deliberately do not).
Login events, successful or not, carry the client id and the client address, never the secret.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from kms_api.appstate import exchange_of
from kms_api.http.error_replies import status_of
from kms_api.observe.jsonlines import CLOCK, EventLog
from kms_api.pipeline.call import Call
from kms_api.schema.fields import is_uuid
from kms_core.errors import KmsError
from kms_core.identity import Identity
from kms_core.outcome import Outcome

if TYPE_CHECKING:
    from kms_api.pipeline.route import Audit

AUDIT_LOG = logging.getLogger("kubekms.audit")
# Written without a LogRecord when the process's JSON handler is the only listener (kms_api.observe.logs),
# and held until the reply is sent (one write per event-loop iteration, before any reply leaves:
# kms_api.observe.jsonlines.release_held, called by kms_api.http.protocol) when the reply goes
# through the connection layer.
AUDIT_EVENTS = EventLog(AUDIT_LOG, held=True)

LOGIN_EVENT: Final = "login-identity-universal-auth"
DENIED_STATUSES: Final = frozenset({401, 403, 429})

Meta = dict[str, Any]


# -- describe functions: (call, outcome) -> metadata; on success only unless the event says so --


def key_record(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """Operations that return one key record: its name."""
    assert outcome is not None and outcome.key is not None
    return {"keyName": outcome.key.name}


def key_created(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None and outcome.key is not None
    key = outcome.key
    return {
        "keyName": key.name,
        "version": key.version,
        "algorithm": key.algorithm.value,
        "isExportable": key.is_exportable,
        "hasDeleteProtection": key.has_delete_protection,
    }


def key_rotated(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None and outcome.key is not None
    key = outcome.key
    return {"keyName": key.name, "version": key.version, "algorithm": key.algorithm.value}


_POLICY_FIELDS: Final = (
    "rotationPeriod", "minDecryptionVersion", "minEncryptionVersion", "minAvailableVersion",
)  # fmt: skip


def key_updated(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """The name and which fields the request changed (names only, never values); when it
    changed the lifecycle policy, the resulting policy (numbers, no secret in them)."""
    assert outcome is not None and outcome.key is not None
    key = outcome.key
    meta: Meta = {"keyName": key.name, "changed": sorted(k for k, v in call.body.items() if v is not None)}
    if any(call.body.get(f) is not None for f in _POLICY_FIELDS):
        meta["policy"] = {
            "rotationPeriod": key.rotation_period,
            "minDecryptionVersion": key.min_decryption_version,
            "minEncryptionVersion": key.min_encryption_version,
            "minAvailableVersion": key.min_available_version,
        }
    return meta


def key_deleted(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """The name and, when the key is kept for a recovery window, its length in seconds from the
    event's time (the exact purge time is in the deleted-keys list); absent: destroyed at once."""
    assert outcome is not None and outcome.key is not None
    meta: Meta = {"keyName": outcome.key.name}
    window = call.service.deletion_window
    if window > 0:
        meta["recoverableForSeconds"] = window
    return meta


def key_restored(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None and outcome.key is not None
    return {"keyName": outcome.key.name, "version": outcome.key.version}


def key_purged(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """The purged key's name and when it had been deleted (its material no longer exists)."""
    assert outcome is not None and outcome.key is not None
    return {"keyName": outcome.key.name, "deletedAt": outcome.result.deleted_at.isoformat()}


def keys_listed(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None
    keys, _total = outcome.result
    return {"keyIds": [k.id for k in keys]}


def keys_listed_deleted(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None
    return {"keyIds": [d.key.id for d in outcome.result]}


def keys_exported(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """Which keys left, by id and name (never their material)."""
    assert outcome is not None
    return {"keys": [{"keyId": e.key.id, "name": e.key.name} for e in outcome.result]}


def keys_imported(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None
    imported, errors = outcome.result
    return {"keyNames": [k.name for k in imported], "failedKeyNames": [name for name, _ in errors]}


def signed(call: Call, outcome: Outcome[Any] | None) -> Meta:
    return {"signingAlgorithm": call.body["signingAlgorithm"]}


def verified(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None
    return {"signingAlgorithm": call.body["signingAlgorithm"], "signatureValid": outcome.result}


def mac_generated(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None and outcome.key is not None
    return {"macAlgorithm": outcome.key.algorithm.value}


def mac_verified(call: Call, outcome: Outcome[Any] | None) -> Meta:
    assert outcome is not None and outcome.key is not None
    return {"macAlgorithm": outcome.key.algorithm.value, "macValid": outcome.result}


_MAX_CLIENT_ID: Final = 128  # client ids are UUIDs; a longer value is cut so it cannot flood the log


def login_attempt(call: Call, outcome: Outcome[Any] | None) -> Meta:
    """Who tried to log in, from where: the client id (an identifier, not a secret) and the client
    address, whatever the outcome. The client secret is never read here."""
    client_id = call.body.get("clientId")
    return {
        "clientId": client_id[:_MAX_CLIENT_ID] if isinstance(client_id, str) else None,
        "clientAddress": call.request.remote,
    }


def _key_id(request: web.Request, outcome: Outcome[Any] | None) -> str | None:
    value = request.match_info.get("keyId")
    if isinstance(value, str) and is_uuid(value):
        return value
    if outcome is not None and outcome.key is not None:
        return outcome.key.id
    return None


def record(call: Call, event: Audit, outcome: Outcome[Any] | None, exc: BaseException | None = None) -> None:
    """Emit the audit event of one finished request: `outcome` is the operation's on success,
    the context its failure carried (or None) when `exc` is set."""
    if not AUDIT_EVENTS.enabled:
        return
    request = call.request
    if exc is None:
        status, error, verdict = 200, None, "success"
    else:
        if isinstance(exc, KmsError):
            status, error = status_of(exc)
        else:
            status = exc.status if isinstance(exc, web.HTTPException) else 500
            error = type(exc).__name__
        verdict = "denied" if status in DENIED_STATUSES else "failure"
    exchange = exchange_of(request)
    exchange.audited = True
    resource = request.match_info.route.resource
    took = round((time.perf_counter() - exchange.started) * 1000, 3) if exchange.started else None
    identity = exchange.identity
    describe = event.describe
    metadata = describe(call, outcome) if describe is not None and (exc is None or event.on_failure) else {}
    AUDIT_EVENTS.emit(
        "audit",
        {
            "time": CLOCK.now(),
            "type": event.type,
            "outcome": verdict,
            "status": status,
            "error": error,
            "identity": identity.id if identity is not None else None,
            "project": outcome.project if outcome is not None else None,
            # A failure's key id is only the one the caller named (the path's).
            "keyId": _key_id(request, outcome if exc is None else None),
            "reqId": exchange.req_id or None,
            # The access fields, so an audited request needs no second line (kms_api.observe.logs).
            "method": request.method,
            "route": resource.canonical if resource is not None else None,
            "duration_ms": took,  # until the reply was ready (the access line's ends after sending)
            "metadata": metadata,
        },
        # Only a reply that goes through the connection layer releases held lines before it leaves.
        before_reply=exchange.guarded,
    )


def record_system(event_type: str, actor: Identity, key_id: str, project: str, metadata: Meta) -> None:
    """Emit the audit event of something the process did on its own, with no request behind it
    (a scheduled rotation, a purge after the recovery window): the same fields as a request's
    event, `identity` the system actor, the request-only fields null. `metadata` must be built
    from an allow-list like every `describe` function's (ids, names, versions; never material)."""
    if not AUDIT_EVENTS.enabled:
        return
    AUDIT_EVENTS.emit(
        "audit",
        {
            "time": CLOCK.now(),
            "type": event_type,
            "outcome": "success",
            "status": None,
            "error": None,
            "identity": actor.id,
            "project": project,
            "keyId": key_id,
            "reqId": None,
            "method": None,
            "route": None,
            "duration_ms": None,
            "metadata": metadata,
        },
    )
