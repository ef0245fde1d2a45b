"""Key lifecycle over HTTP (README "Key lifecycle"): the versions route, the policy fields of
PATCH and every refusal of them, the version bounds on decrypt, trimming, and recoverable
deletion (list, restore, purge) with its permission — against the real app on loopback.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fixtures.api import OPERATOR, PROJECT_ADMIN, VIEWER, Api, P, b64, unb64
from fixtures.lifecycle import WINDOW, WindowedApi, serve_with_window
from kms_core.lifecycle import VersionState

KEYS = "/api/v1/kms/keys"
DELETED = "/api/v1/kms/deleted-keys"
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
OPAQUE = "Ciphertext cannot be decrypted with this KMS key."
# Infisical's key object, exactly: the lifecycle extensions never add to it.
KEY_FIELDS = {"id", "name", "description", "isDisabled", "orgId", "projectId", "keyUsage", "createdAt",
              "updatedAt", "version", "encryptionAlgorithm", "algorithm", "isExportable",
              "hasDeleteProtection", "kmipMetadata"}  # fmt: skip


@pytest.fixture
async def served(aiohttp_client: Any, api_settings: Any) -> AsyncIterator[WindowedApi]:
    async with serve_with_window(aiohttp_client, api_settings) as served:
        yield served


@pytest.fixture
def api(served: WindowedApi) -> Api:
    return served.api


def parse_date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


async def ok(api: Api, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    reply = await api.call(method, path, body, **kw)
    assert reply.status == 200, reply
    return reply.body


async def patch(api: Api, key_id: str, **fields: Any) -> Any:
    return await api.call("PATCH", api.key(key_id), fields)


async def versions(api: Api, key_id: str, **kw: Any) -> Any:
    return await ok(api, "GET", api.key(key_id, "versions"), **kw)


async def encrypt(api: Api, key_id: str, plaintext: bytes) -> str:
    body = await ok(api, "POST", api.key(key_id, "encrypt"), {"plaintext": b64(plaintext)})
    return str(body["ciphertext"])


async def decrypt(api: Api, key_id: str, ciphertext: str) -> Any:
    return await api.call("POST", api.key(key_id, "decrypt"), {"ciphertext": ciphertext})


async def rotated(api: Api, times: int, **create: Any) -> tuple[str, list[str]]:
    """A new key rotated `times` times, with one ciphertext of b"v<n>" under each version n."""
    key_id = (await api.create(f"k-{uuid.uuid4().hex[:8]}", **create))["id"]
    texts = [await encrypt(api, key_id, b"v1")]
    for n in range(2, times + 2):
        await ok(api, "POST", api.key(key_id, "rotate"))
        texts.append(await encrypt(api, key_id, f"v{n}".encode()))
    return key_id, texts


# ----------------------------------------------------------------------------- versions route


async def test_versions_after_rotations(api: Api) -> None:
    key_id, _ = await rotated(api, 2)
    body = await versions(api, key_id)
    assert set(body) == {"keyId", "currentVersion", "versions", "policy"}
    assert (body["keyId"], body["currentVersion"]) == (key_id, 3)
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]  # newest first
    assert [v["state"] for v in body["versions"]] == ["primary", "enabled", "enabled"]
    ids = [v["id"] for v in body["versions"]]
    assert len(set(ids)) == 3 and all(uuid.UUID(i).version == 5 for i in ids)
    assert ids == [v["id"] for v in (await versions(api, key_id))["versions"]]  # stable
    assert ids[2] == str(uuid.uuid5(uuid.UUID(key_id), "version-1"))  # as documented
    created = [parse_date(v["createdAt"]) for v in body["versions"]]
    assert created == sorted(created, reverse=True)
    assert body["policy"] == {
        "rotationPeriod": None, "minDecryptionVersion": 1, "minEncryptionVersion": 0,
        "minAvailableVersion": 0, "nextRotationAt": None,
        "lastRotatedAt": body["versions"][0]["createdAt"],
    }  # fmt: skip
    fresh = await api.create("fresh")
    assert (await versions(api, fresh["id"]))["policy"]["lastRotatedAt"] is None  # never rotated


async def test_versions_needs_read_and_knows_every_usage(api: Api) -> None:
    signing = await api.create("signer", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    body = await versions(api, signing["id"], token=VIEWER)  # read is enough
    assert [(v["version"], v["state"]) for v in body["versions"]] == [(1, "primary")]
    denied = await api.call("GET", api.key(signing["id"], "versions"), token=OPERATOR)
    assert (denied.status, denied.body["message"]) == (403, "You are not allowed to read on cmek")
    missing = await api.call("GET", api.key(str(uuid.uuid4()), "versions"))
    assert missing.status == 404 and missing.body["error"] == "NotFound"
    bad = await api.call("GET", f"{KEYS}/not-a-uuid/versions")
    assert bad.status == 422 and bad.body["message"][0]["message"] == "Invalid UUID"


# ----------------------------------------------------------------------------- PATCH policy


@pytest.mark.parametrize(
    ("period", "shown"),
    [("24h", "1d"), ("1h30m", "90m"), (7200, "2h"), ("86400", "1d"), ("90d", "90d"), (3601, "3601s")],
)
async def test_rotation_period_set_and_shown(api: Api, period: Any, shown: str) -> None:
    key = await api.create("scheduled")
    reply = await patch(api, key["id"], rotationPeriod=period)
    assert reply.status == 200 and set(reply.body["key"]) == KEY_FIELDS  # Infisical's object only
    policy = (await versions(api, key["id"]))["policy"]
    assert policy["rotationPeriod"] == shown
    seconds = {"1d": 86400, "90m": 5400, "2h": 7200, "90d": 90 * 86400, "3601s": 3601}[shown]
    due = parse_date(key["createdAt"]) + timedelta(seconds=seconds)
    assert abs(parse_date(policy["nextRotationAt"]) - due) < timedelta(seconds=1)


@pytest.mark.parametrize("off", [0, "0", None, "0s"])
async def test_rotation_period_turned_off(api: Api, off: Any) -> None:
    key = await api.create("scheduled")
    assert (await patch(api, key["id"], rotationPeriod="24h")).status == 200
    assert (await patch(api, key["id"], rotationPeriod=off)).status == 200
    policy = (await versions(api, key["id"]))["policy"]
    assert (policy["rotationPeriod"], policy["nextRotationAt"]) == (None, None)


async def test_disabled_key_has_no_next_rotation(api: Api) -> None:
    key = await api.create("scheduled")
    assert (await patch(api, key["id"], rotationPeriod="24h", isDisabled=True)).status == 200
    policy = (await versions(api, key["id"]))["policy"]
    assert (policy["rotationPeriod"], policy["nextRotationAt"]) == ("1d", None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rotationPeriod": "30m"}, "auto rotate period must be 0 to disable or at least an hour"),
        ({"rotationPeriod": 59}, "auto rotate period must be 0 to disable or at least an hour"),
        ({"minDecryptionVersion": 4}, "cannot set min decryption version of 4, latest key version is 3"),
        ({"minEncryptionVersion": 4}, "cannot set min encryption version of 4, latest key version is 3"),
        ({"minDecryptionVersion": 3, "minEncryptionVersion": 2},
         "cannot set min encryption/decryption values; min encryption version of 2 must be greater than "
         "or equal to min decryption version of 3"),
        ({"minAvailableVersion": 2},
         "minimum available version cannot be set when minimum encryption version is not set"),
        ({"minEncryptionVersion": 2, "minAvailableVersion": 0},
         "minimum available version should be positive"),
        ({"minEncryptionVersion": 2, "minAvailableVersion": 2},
         "minimum available version cannot be greater than minimum decryption version"),
        ({"minDecryptionVersion": 3, "minEncryptionVersion": 3, "minAvailableVersion": 4},
         "minimum available version cannot be greater than minmum encryption version"),  # OpenBao's order
        ({"minDecryptionVersion": 3, "minEncryptionVersion": 2, "minAvailableVersion": 3},
         "cannot set min encryption/decryption values; min encryption version of 2 must be greater than "
         "or equal to min decryption version of 3"),
    ],
)  # fmt: skip
async def test_policy_refusals_leave_the_key_as_it_was(
    api: Api, fields: dict[str, Any], message: str
) -> None:
    key_id, _ = await rotated(api, 2)
    before = await versions(api, key_id)
    reply = await patch(api, key_id, name="renamed", **fields)
    assert (reply.status, reply.body["error"], reply.body["message"]) == (400, "BadRequest", message)
    assert await versions(api, key_id) == before  # checked whole before anything is stored
    assert (await ok(api, "GET", api.key(key_id)))["key"]["name"] != "renamed"


async def test_trim_refusals_after_a_trim(api: Api) -> None:
    key_id, _ = await rotated(api, 2)
    assert (await patch(api, key_id, minDecryptionVersion=3, minEncryptionVersion=3)).status == 200
    assert (await patch(api, key_id, minAvailableVersion=3)).status == 200
    for fields, message in [
        ({"minDecryptionVersion": 2}, "min decryption version should not be less then min available version"),
        ({"minDecryptionVersion": 2, "minEncryptionVersion": 3},
         "min decryption version should not be less then min available version"),
        ({"minEncryptionVersion": 0}, "min encryption version should not be less than min available version"),
        ({"minAvailableVersion": 2}, "minimum available version cannot be decremented"),
    ]:  # fmt: skip
        reply = await patch(api, key_id, **fields)
        assert (reply.status, reply.body["message"]) == (400, message), fields


@pytest.mark.parametrize(
    ("fields", "path", "code"),
    [
        ({"rotationPeriod": "a day"}, "rotationPeriod", "invalid_format"),
        ({"rotationPeriod": "-1h"}, "rotationPeriod", "invalid_format"),
        ({"rotationPeriod": "9" * 65}, "rotationPeriod", "too_big"),
        ({"rotationPeriod": 1.5}, "rotationPeriod", "invalid_type"),
        ({"rotationPeriod": -1}, "rotationPeriod", "too_small"),
        ({"rotationPeriod": 1e300}, "rotationPeriod", "too_big"),
        ({"rotationPeriod": True}, "rotationPeriod", "invalid_type"),
        ({"rotationPeriod": []}, "rotationPeriod", "invalid_type"),
        ({"minDecryptionVersion": "2"}, "minDecryptionVersion", "invalid_type"),
        ({"minDecryptionVersion": -1}, "minDecryptionVersion", "too_small"),
        ({"minEncryptionVersion": 2.5}, "minEncryptionVersion", "invalid_type"),
        ({"minEncryptionVersion": None}, "minEncryptionVersion", "invalid_type"),
        ({"minAvailableVersion": 2**53}, "minAvailableVersion", "too_big"),
    ],
)
async def test_policy_field_syntax_is_422(api: Api, fields: dict[str, Any], path: str, code: str) -> None:
    key = await api.create("k")
    reply = await patch(api, key["id"], **fields)
    assert (reply.status, reply.body["error"]) == (422, "ValidationFailure"), reply
    assert [(i["path"], i["code"]) for i in reply.body["message"]] == [([path], code)]
    assert str(fields[path])[:20] not in str(reply.body["message"]) or isinstance(fields[path], bool | list)


async def test_min_decryption_version_zero_is_one(api: Api) -> None:
    key_id, _ = await rotated(api, 1)
    assert (await patch(api, key_id, minDecryptionVersion=2)).status == 200
    assert (await patch(api, key_id, minDecryptionVersion=0)).status == 200
    assert (await versions(api, key_id))["policy"]["minDecryptionVersion"] == 1


async def test_update_audit_event_carries_the_policy(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    key = await api.create("audited")
    caplog.set_level(logging.INFO, logger="kubekms.audit")
    assert (await patch(api, key["id"], rotationPeriod="24h", description="d")).status == 200
    event = next(r for r in caplog.records if r.name == "kubekms.audit" and r.type == "update-cmek")  # type: ignore[attr-defined]
    meta = event.metadata  # type: ignore[attr-defined]
    assert meta["changed"] == ["description", "rotationPeriod"]
    assert meta["policy"] == {"rotationPeriod": 86400, "minDecryptionVersion": 1, "minEncryptionVersion": 0,
                              "minAvailableVersion": 0}  # fmt: skip


# ----------------------------------------------------------------------------- bounds on decrypt


async def test_old_ciphertext_refused_clearly_after_min_decryption_version(api: Api) -> None:
    key_id, texts = await rotated(api, 2)
    for n, text in enumerate(texts, start=1):
        assert unb64((await decrypt(api, key_id, text)).body["plaintext"]) == f"v{n}".encode()
    assert (await patch(api, key_id, minDecryptionVersion=2)).status == 200
    states = [v["state"] for v in (await versions(api, key_id))["versions"]]
    assert states == [VersionState.PRIMARY, VersionState.ENABLED, VersionState.DISABLED]
    too_old = await decrypt(api, key_id, texts[0])
    assert (too_old.status, too_old.body["error"], too_old.body["message"]) == (400, "BadRequest", TOO_OLD)
    assert unb64((await decrypt(api, key_id, texts[1])).body["plaintext"]) == b"v2"
    # Every other failure keeps the one opaque message: garbage, a tampered allowed ciphertext.
    for garbage in (b64(os.urandom(64)), b64(os.urandom(29)), b64(bytes(40))):
        reply = await decrypt(api, key_id, garbage)
        assert (reply.status, reply.body["message"]) == (400, OPAQUE)
    tampered = bytearray(unb64(texts[2]))
    tampered[0] ^= 1
    reply = await decrypt(api, key_id, b64(bytes(tampered)))
    assert (reply.status, reply.body["message"]) == (400, OPAQUE)
    # Lowering the bound again brings version 1 back (its material was kept).
    assert (await patch(api, key_id, minDecryptionVersion=1)).status == 200
    assert unb64((await decrypt(api, key_id, texts[0])).body["plaintext"]) == b"v1"


async def test_min_encryption_version_marks_decrypt_only(api: Api) -> None:
    key_id, texts = await rotated(api, 2)
    assert (await patch(api, key_id, minEncryptionVersion=3)).status == 200
    states = [v["state"] for v in (await versions(api, key_id))["versions"]]
    assert states == ["primary", "decrypt-only", "decrypt-only"]
    assert unb64((await decrypt(api, key_id, texts[0])).body["plaintext"]) == b"v1"


async def test_trim_destroys_old_versions_for_good(api: Api) -> None:
    key_id, texts = await rotated(api, 2)
    body = {"minDecryptionVersion": 3, "minEncryptionVersion": 3, "minAvailableVersion": 3}
    assert (await api.call("PATCH", api.key(key_id), body)).status == 200  # one request: raise, trim
    after = await versions(api, key_id)
    assert [v["version"] for v in after["versions"]] == [3]
    assert after["policy"]["minAvailableVersion"] == 3
    assert unb64((await decrypt(api, key_id, texts[2])).body["plaintext"]) == b"v3"
    reply = await decrypt(api, key_id, texts[0])
    assert (reply.status, reply.body["message"]) == (400, TOO_OLD)
    # The bound cannot be lowered below the trimmed versions: they no longer exist.
    reply = await patch(api, key_id, minDecryptionVersion=1)
    assert reply.status == 400 and "min available version" in reply.body["message"]


# ----------------------------------------------------------------------------- recoverable deletion


async def deleted_list(api: Api, project: str = P, token: str | None = None) -> Any:
    kw = {"token": token} if token else {}
    return await ok(api, "GET", f"{DELETED}?projectId={project}", **kw)


async def test_delete_hides_then_restore_brings_everything_back(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    key_id, texts = await rotated(api, 1)
    await patch(api, key_id, rotationPeriod="24h")
    caplog.set_level(logging.INFO, logger="kubekms.audit")
    deleted = await ok(api, "DELETE", api.key(key_id))
    assert set(deleted["key"]) == KEY_FIELDS  # Infisical's wire behaviour is unchanged
    # Gone from every route at once.
    assert (await api.call("GET", api.key(key_id))).status == 404
    assert (await api.call("POST", api.key(key_id, "decrypt"), {"ciphertext": texts[0]})).status == 404
    assert (await api.call("GET", api.key(key_id, "versions"))).status == 404
    assert key_id not in [k["id"] for k in (await ok(api, "GET", f"{KEYS}?projectId={P}"))["keys"]]
    # Listed as deleted, with its window.
    listing = await deleted_list(api)
    assert listing["totalCount"] == 1
    entry = listing["keys"][0]
    assert (entry["id"], entry["version"]) == (key_id, 2)
    assert set(entry) == KEY_FIELDS | {"deletedAt", "purgeAt"}
    window = parse_date(entry["purgeAt"]) - parse_date(entry["deletedAt"])
    assert abs(window - timedelta(seconds=WINDOW)) < timedelta(seconds=1)
    # Restored: same id, versions, policy; old ciphertexts decrypt.
    restored = await ok(api, "POST", f"{DELETED}/{key_id}/restore", {})
    assert set(restored["key"]) == KEY_FIELDS and restored["key"]["id"] == key_id
    assert [unb64((await decrypt(api, key_id, t)).body["plaintext"]) for t in texts] == [b"v1", b"v2"]
    assert (await versions(api, key_id))["policy"]["rotationPeriod"] == "1d"
    assert (await deleted_list(api))["keys"] == []
    events = {r.type: r for r in caplog.records if r.name == "kubekms.audit"}  # type: ignore[attr-defined]
    assert events["delete-cmek"].metadata["recoverableForSeconds"] == WINDOW  # type: ignore[attr-defined]
    assert events["restore-cmek"].keyId == key_id and events["restore-cmek"].outcome == "success"  # type: ignore[attr-defined]
    # Restoring twice: nothing is deleted any more.
    again = await api.call("POST", f"{DELETED}/{key_id}/restore", {})
    assert (again.status, again.body["message"]) == (404, f"Deleted key with ID {key_id} not found")


async def test_restore_under_a_new_name_when_the_old_one_was_taken(api: Api) -> None:
    old = await api.create("shared-name")
    await ok(api, "DELETE", api.key(old["id"]))
    await api.create("shared-name")
    clash = await api.call("POST", f"{DELETED}/{old['id']}/restore", {})
    assert (clash.status, clash.body["message"]) == (
        400, f'A KMS key with the name "shared-name" already exists for the project with ID "{P}"')
    bad = await api.call("POST", f"{DELETED}/{old['id']}/restore", {"name": "Bad Name"})
    assert bad.status == 422 and bad.body["message"][0]["path"] == ["name"]
    restored = await ok(api, "POST", f"{DELETED}/{old['id']}/restore", {"name": "shared-name-old"})
    assert (restored["key"]["id"], restored["key"]["name"]) == (old["id"], "shared-name-old")


async def test_purge_destroys_now(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    key = await api.create("doomed")
    await ok(api, "DELETE", api.key(key["id"]))
    caplog.set_level(logging.INFO, logger="kubekms.audit")
    purged = await ok(api, "DELETE", f"{DELETED}/{key['id']}")
    assert purged["key"]["id"] == key["id"] and "deletedAt" in purged["key"]
    assert (await deleted_list(api))["keys"] == []
    gone = f"{DELETED}/{key['id']}"
    for method, path, body in (("POST", f"{gone}/restore", {}), ("DELETE", gone, None)):
        reply = await api.call(method, path, body)
        assert (reply.status, reply.body["error"]) == (404, "NotFound")
    assert next(r.type for r in caplog.records if r.name == "kubekms.audit") == "purge-cmek"  # type: ignore[attr-defined]


async def test_a_key_past_its_window_cannot_be_restored(served: WindowedApi) -> None:
    api = served.api
    key = await api.create("expired")
    # Deleted with a purge time already past (the scheduler has not run yet).
    await served.service.store.delete(key["id"], datetime.now(UTC) - timedelta(seconds=1))
    assert (await deleted_list(api))["keys"] == []
    reply = await api.call("POST", f"{DELETED}/{key['id']}/restore", {})
    assert reply.status == 404


@pytest.mark.parametrize("token", [OPERATOR, VIEWER])
async def test_only_admins_list_restore_or_purge(api: Api, token: str) -> None:
    key = await api.create("precious")
    await ok(api, "DELETE", api.key(key["id"]))
    for method, path, body in (
        ("GET", f"{DELETED}?projectId={P}", None),
        ("POST", f"{DELETED}/{key['id']}/restore", {}),
        ("DELETE", f"{DELETED}/{key['id']}", None),
    ):
        reply = await api.call(method, path, body, token=token)
        assert (reply.status, reply.body["error"]) == (403, "PermissionDenied"), (method, path)
        assert reply.body["message"] == "You are not allowed to restore on cmek"
    # A project admin may (the role holds `restore`); the key was left untouched by the refusals.
    assert [k["id"] for k in (await deleted_list(api, token=PROJECT_ADMIN))["keys"]] == [key["id"]]
    await ok(api, "POST", f"{DELETED}/{key['id']}/restore", {}, token=PROJECT_ADMIN)


async def test_deleted_keys_routes_validate_their_input(api: Api) -> None:
    no_project = await api.call("GET", DELETED)
    assert no_project.status == 422 and no_project.body["message"][0]["path"] == ["projectId"]
    for method, path in (("POST", f"{DELETED}/nope/restore"), ("DELETE", f"{DELETED}/nope")):
        reply = await api.call(method, path, {} if method == "POST" else None)
        assert reply.status == 422 and reply.body["message"][0]["message"] == "Invalid UUID"
    json_header = {"Content-Type": "application/json"}
    empty = await api.call("POST", f"{DELETED}/{uuid.uuid4()}/restore", None, headers=json_header)
    assert empty.status == 422
    unknown = await api.call("DELETE", f"{DELETED}/{uuid.uuid4()}")
    assert (unknown.status, unknown.body["error"]) == (404, "NotFound")


async def test_without_a_window_a_deleted_key_is_gone_at_once(aiohttp_client: Any, api_settings: Any) -> None:
    async with serve_with_window(aiohttp_client, api_settings, window=0) as served:
        api = served.api
        key = await api.create("ephemeral")
        await ok(api, "DELETE", api.key(key["id"]))
        assert (await deleted_list(api))["keys"] == []
        assert (await api.call("POST", f"{DELETED}/{key['id']}/restore", {})).status == 404


# ----------------------------------------------------------------------------- which route rotates


async def test_the_infisical_rotate_route_keeps_infisicals_rule_scheduled_rotation_does_not(
    served: WindowedApi,
) -> None:
    api = served.api
    signing = await api.create("signer", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    reply = await api.call("POST", api.key(signing["id"], "rotate"))
    assert reply.status == 400
    assert reply.body["message"].startswith("Only encrypt-decrypt keys support rotation")
    sign = {"signingAlgorithm": "ECDSA_SHA_256", "data": b64(b"m")}
    old = (await ok(api, "POST", api.key(signing["id"], "sign"), sign))["signature"]
    # Scheduled rotation (the scheduler's call, time injected) rotates every usage.
    assert (await patch(api, signing["id"], rotationPeriod="1h")).status == 200
    later = datetime.now(UTC) + timedelta(hours=2)
    assert (await served.service.rotate_if_due(signing["id"], later)) is not None
    body = await versions(api, signing["id"])
    assert [(v["version"], v["state"]) for v in body["versions"]] == [(2, "primary"), (1, "enabled")]
    verified = await ok(api, "POST", api.key(signing["id"], "verify"), {**sign, "signature": old})
    assert verified["signatureValid"] is True  # the old version still verifies
