"""The route registry: every authenticated route is audited and declares the action the service enforces.

The real app over HTTP, with a real SQLite store and root-key sealer, and a key service whose
policy denies every HTTP caller and records what it was asked. Each authenticated route is called
with a request that passes validation on a key that exists, so the service reaches its permission
check; the action it asked must be exactly the one the route declares, the reply the spec's 403,
and the audit event the route's, marked denied. A new route without a sample request here fails
the coverage test, so it cannot join the table untested.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import ADMIN, Api, b64
from kms_api.auth.base import Identity
from kms_api.auth.tokens import build_token_auth
from kms_api.infisical import system
from kms_api.infisical.routes import ROUTES
from kms_api.pipeline.route import Audit, Route
from kms_core.errors import PermissionDenied
from kms_core.model import KeySpec
from kms_core.policy import Action
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.sqlite import SqliteStore

P = "proj"
SETUP = Identity("setup", "setup", "token")


class ProbePolicy:
    """Allows the test's own set-up identity; denies every other caller, recording each action."""

    def __init__(self) -> None:
        self.asked: list[Action] = []

    async def check(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        if identity == SETUP:
            return
        self.asked.append(action)
        raise PermissionDenied(action)


# One request per authenticated route that passes its schema: (path suffix under /api/v1/kms/keys,
# or a full path starting with /api/, and the body). `{keyId}` and `{keyName}` are filled with an
# existing key's, `{deletedKeyId}` with the id of a key deleted within its recovery window.
DELETED = "/api/v1/kms/deleted-keys"
SAMPLES: dict[str, tuple[str, Any]] = {
    "createKmsKey": ("", {"projectId": P, "name": "new"}),
    "listKmsKeys": (f"?projectId={P}", None),
    "bulkExportKmsKeyPrivateKeys": ("/bulk-export-private-keys", {"keyIds": ["{keyId}"]}),
    "bulkImportKmsKeys": ("/bulk-import", {"projectId": P, "keys": [
        {"name": "imp", "keyUsage": "encrypt-decrypt", "algorithm": "aes-128-gcm",
         "keyMaterial": b64(os.urandom(16))}]}),
    "getKmsKeyByName": (f"/key-name/{{keyName}}?projectId={P}", None),
    "getKmsKeyById": ("/{keyId}", None),
    "updateKmsKey": ("/{keyId}", {"description": "d"}),
    "deleteKmsKey": ("/{keyId}", None),
    "encryptWithKmsKey": ("/{keyId}/encrypt", {"plaintext": b64(b"x")}),
    "decryptWithKmsKey": ("/{keyId}/decrypt", {"ciphertext": b64(bytes(40))}),
    "getKmsKeyPublicKey": ("/{keyId}/public-key", None),
    "getKmsKeyPrivateKey": ("/{keyId}/private-key", None),
    "listKmsKeySigningAlgorithms": ("/{keyId}/signing-algorithms", None),
    "signWithKmsKey": ("/{keyId}/sign", {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(b"m")}),
    "verifyWithKmsKey": ("/{keyId}/verify",
                         {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(b"m"), "signature": b64(b"s")}),
    "rotateKmsKey": ("/{keyId}/rotate", None),
    "generateMacWithKmsKey": ("/{keyId}/generate-mac", {"data": b64(b"m")}),
    "verifyMacWithKmsKey": ("/{keyId}/verify-mac", {"data": b64(b"m"), "mac": b64(b"q")}),
    "deriveSharedSecretWithKmsKey": ("/{keyId}/derive-shared-secret", {"publicKey": b64(b"p")}),
    "listKmsKeyVersions": ("/{keyId}/versions", None),
    "listDeletedKmsKeys": (f"{DELETED}?projectId={P}", None),
    "restoreDeletedKmsKey": (DELETED + "/{deletedKeyId}/restore", {}),
    "purgeDeletedKmsKey": (DELETED + "/{deletedKeyId}", None),
}  # fmt: skip
AUTHENTICATED = [r for r in ROUTES if not r.public]


@pytest.fixture
async def probed(aiohttp_client: Any, api_settings: Any, tmp_path: Path) -> AsyncIterator[tuple[Api, Any]]:
    from kms_api.app import create_app

    policy = ProbePolicy()
    sealer = RootKeySealer(os.urandom(32))
    store = SqliteStore.open(tmp_path / "store", sealer.kek_id)
    service = KeyService(store, sealer, policy, deletion_window=3600)
    auth = build_token_auth(api_settings.data_dir, api_settings.tokens_file, ADMIN)
    key = (await service.create(SETUP, KeySpec(project_id=P, name="probe"))).result
    gone = (await service.create(SETUP, KeySpec(project_id=P, name="gone"))).result
    await service.delete(SETUP, gone.id)  # restorable for an hour: the deleted-keys routes' subject
    client = await aiohttp_client(create_app(api_settings, service=service, auth=auth))
    yield Api(client), (policy, key, gone.id)
    await service.close()
    await auth.close()


def test_every_authenticated_route_has_a_sample() -> None:
    assert {r.name for r in AUTHENTICATED} == set(SAMPLES)


@pytest.mark.parametrize("route", AUTHENTICATED, ids=lambda r: r.name)
async def test_the_route_asks_its_declared_action_and_audits_the_denial(
    route: Route, probed: tuple[Api, Any], caplog: pytest.LogCaptureFixture
) -> None:
    api, (policy, key, deleted_id) = probed
    suffix, body = SAMPLES[route.name]
    path = suffix if suffix.startswith("/api/") else "/api/v1/kms/keys" + suffix
    path = path.replace("{keyId}", key.id).replace("{keyName}", key.name)
    path = path.replace("{deletedKeyId}", deleted_id)
    if body is not None:
        body = _fill(body, key.id)
    caplog.set_level(logging.INFO, logger="kubekms.audit")

    reply = await api.call(route.method, path, body)

    assert route.action is not None and route.audit is not None
    assert (reply.status, reply.body["error"]) == (403, "PermissionDenied"), reply
    assert reply.body["message"] == f"You are not allowed to {route.action} on cmek"
    assert policy.asked == [route.action]  # asked once, for exactly the declared action
    events = [r for r in caplog.records if r.name == "kubekms.audit"]
    assert [(e.type, e.outcome, e.project) for e in events] == [(route.audit.type, "denied", P)]  # type: ignore[attr-defined]


def _fill(value: Any, key_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, key_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, key_id) for v in value]
    return key_id if value == "{keyId}" else value


def test_an_authenticated_route_cannot_be_declared_without_audit_or_action() -> None:
    async def handler(call: Any) -> Any:
        raise AssertionError("never called")

    common: dict[str, Any] = {
        "method": "GET", "path": "/x", "name": "x", "summary": "x", "handler": handler,
        "encode": system.reply,
    }  # fmt: skip
    with pytest.raises(ValueError, match="declares its audit event and action"):
        Route(**common, audit=None, action=Action.READ)
    with pytest.raises(ValueError, match="declares its audit event and action"):
        Route(**common, audit=Audit("x"), action=None)
    with pytest.raises(ValueError, match="public route has no caller"):
        Route(**common, audit=None, action=Action.READ, public=True)
    assert Route(**common, audit=Audit("x"), action=Action.READ).action is Action.READ
