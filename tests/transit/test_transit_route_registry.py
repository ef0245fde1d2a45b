"""Every authenticated Transit route asks the service for the action it declares, answers Vault's
403 when refused, and audits the denial — the Infisical registry test's proof, for this dialect
(the policy here denies every HTTP caller and records what it was asked)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import ADMIN, Api, b64
from kms_api.auth.tokens import build_token_auth
from kms_api.pipeline.route import Route
from kms_api.transit.routes import ROUTES
from kms_core.errors import PermissionDenied
from kms_core.identity import Identity
from kms_core.model import KeySpec
from kms_core.policy import Action
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.sqlite import SqliteStore

pytestmark = pytest.mark.integration

P = "proj"
SETUP = Identity("setup", "setup", "token")
M = b64(b"m")

# One request per authenticated route (by name; POST and PUT share theirs): (path, body).
SAMPLES: dict[str, tuple[str, Any]] = {
    "vaultMounts": ("sys/mounts", None),
    "vaultLookupSelf": ("auth/token/lookup-self", None),
    "transitRandom": ("transit/random/8", {}),
    "transitHash": ("transit/hash", {"input": M}),
    "transitHashAlgorithm": ("transit/hash/sha2-512", {"input": M}),
    "transitListKeys": ("transit/keys?list=true", None),
    "transitListKeysSlash": ("transit/keys/?list=true", None),
    "transitReadKey": ("transit/keys/probe", None),
    "transitCreateKey": ("transit/keys/new", {}),
    "transitEncrypt": ("transit/encrypt/probe", {"plaintext": M}),
    "transitDecrypt": ("transit/decrypt/probe", {"ciphertext": "vault:v1:" + b64(bytes(40))}),
    "transitHmac": ("transit/hmac/probe", {"input": M}),
    "transitHmacAlgorithm": ("transit/hmac/probe/sha2-256", {"input": M}),
    "transitSign": ("transit/sign/probe", {"input": M}),
    "transitSignHash": ("transit/sign/probe/sha2-256", {"input": M}),
    "transitVerify": ("transit/verify/probe", {"input": M, "signature": "vault:v1:" + M}),
    "transitVerifyHash": ("transit/verify/probe/sha2-256", {"input": M, "signature": "vault:v1:" + M}),
    "transitDeleteKey": ("transit/keys/probe", None),
    "transitRotateKey": ("transit/keys/probe/rotate", {}),
    "transitConfigureKey": ("transit/keys/probe/config", {"deletion_allowed": True}),
    "transitTrimKey": ("transit/keys/probe/trim", {"min_available_version": 1}),
    "transitSoftDeleteKey": ("transit/keys/probe/soft-delete", None),
    "transitSoftRestoreKey": ("transit/keys/probe/soft-delete-restore", {}),
    "transitExport": ("transit/export/public-key/probe", None),
    "transitExportVersion": ("transit/export/public-key/probe/1", None),
    "transitRewrap": ("transit/rewrap/probe", {"ciphertext": "vault:v1:" + b64(bytes(40))}),
    "transitDataKey": ("transit/datakey/plaintext/probe", {}),
    "transitWrappingKey": ("transit/wrapping_key", None),
    "transitImportKey": ("transit/keys/new/import", {"ciphertext": b64(bytes(600))}),
    "transitImportKeyVersion": ("transit/keys/probe/import_version", {"ciphertext": b64(bytes(600))}),
    "transitBackupKey": ("transit/backup/probe", None),
    "transitRestoreKey": ("transit/restore", {"backup": b64(b"{}")}),
    "transitRestoreKeyNamed": ("transit/restore/probe", {"backup": b64(b"{}")}),
}
AUTHENTICATED = [r for r in ROUTES if not r.public]


class ProbePolicy:
    def __init__(self) -> None:
        self.asked: list[tuple[Action, str]] = []

    async def check(self, identity: Identity, action: Action, project: str, key_name: str | None) -> None:
        if identity == SETUP:
            return
        self.asked.append((action, project))
        raise PermissionDenied(action)


@pytest.fixture
async def probed(
    aiohttp_client: Any, api_settings: Any, tmp_path: Path
) -> AsyncIterator[tuple[Api, ProbePolicy]]:
    from kms_api.app import create_app

    policy = ProbePolicy()
    sealer = RootKeySealer(os.urandom(32))
    service = KeyService(SqliteStore.open(tmp_path / "store", sealer.kek_id), sealer, policy)
    auth = build_token_auth(api_settings.data_dir, api_settings.tokens_file, ADMIN)
    await service.create(SETUP, KeySpec(project_id=P, name="probe"))
    client = await aiohttp_client(create_app(api_settings, service=service, auth=auth))
    yield Api(client), policy
    await service.close()
    await auth.close()


def test_every_authenticated_route_has_a_sample() -> None:
    assert {r.name for r in AUTHENTICATED} == set(SAMPLES)


@pytest.mark.parametrize("route", AUTHENTICATED, ids=lambda r: f"{r.name}-{r.method}")
async def test_the_route_asks_its_declared_action_and_audits_the_denial(
    route: Route, probed: tuple[Api, ProbePolicy], caplog: pytest.LogCaptureFixture
) -> None:
    api, policy = probed
    path, body = SAMPLES[route.name]
    caplog.set_level(logging.INFO, logger="kubekms.audit")

    reply = await api.call(route.method, "/v1/" + path, body, headers={"X-Vault-Namespace": P})

    assert route.action is not None and route.audit is not None
    assert (reply.status, reply.body) == (403, {"errors": ["permission denied"]})
    assert policy.asked == [(route.action, P)]  # asked once, for exactly the declared action
    events = [r for r in caplog.records if r.name == "kubekms.audit"]
    assert [(e.type, e.outcome, e.project) for e in events] == [(route.audit.type, "denied", P)]  # type: ignore[attr-defined]


async def test_verifying_an_hmac_asks_verify_mac(probed: tuple[Api, ProbePolicy]) -> None:
    api, policy = probed
    body = {"input": M, "hmac": "vault:v1:" + M}
    reply = await api.call("POST", "/v1/transit/verify/probe", body, headers={"X-Vault-Namespace": P})
    assert reply.status == 403 and policy.asked == [(Action.VERIFY_MAC, P)]


@pytest.mark.parametrize("kind", ["encryption-key", "signing-key", "hmac-key"])
async def test_exporting_private_material_asks_export(kind: str, probed: tuple[Api, ProbePolicy]) -> None:
    api, policy = probed
    reply = await api.call("GET", f"/v1/transit/export/{kind}/probe", None, headers={"X-Vault-Namespace": P})
    assert reply.status == 403 and policy.asked == [(Action.EXPORT, P)]


async def test_without_a_namespace_the_project_is_default(probed: tuple[Api, ProbePolicy]) -> None:
    api, policy = probed
    assert (await api.call("POST", "/v1/transit/encrypt/probe", {"plaintext": M})).status == 403
    assert policy.asked == [(Action.ENCRYPT, "default")]
