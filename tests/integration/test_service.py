"""KeyService on a real SQLite store and a real root-key sealer: check order, usages, rotation,
import/export, caching, and log hygiene (no key material in any log line)."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_core import material
from kms_core.errors import BadRequest, DecryptionFailed, DuplicateName, NotFound, PermissionDenied
from kms_core.model import Algorithm, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.base import ListQuery
from kms_core.stores.sqlite import SqliteStore
from kms_core.transfer import ImportEntry

P = "proj"


class Recorder:
    """An authorizer that records every check and denies the actions it is told to deny."""

    def __init__(self, deny: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.deny = deny or set()

    async def __call__(self, action: str, project_id: str, key_name: str | None) -> None:
        self.calls.append((action, project_id, key_name))
        if action in self.deny:
            raise PermissionDenied(action)


class CountingSealer(RootKeySealer):
    """A real root-key sealer that counts unseal calls (to observe the keyring cache)."""

    unseals = 0

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        type(self).unseals += 1
        return super().unseal(blob, aad)


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[KeyService]:
    sealer = CountingSealer(os.urandom(32))
    store = SqliteStore.open(tmp_path, sealer.kek_id)
    service = KeyService(store, sealer)
    yield service
    await service.close()


async def test_create_defaults_and_duplicate(svc: KeyService) -> None:
    authz = Recorder()
    key = await svc.create(KeySpec(project_id=P, name="app-key"), authz)
    assert (key.key_usage, key.algorithm, key.version, key.is_disabled) == (
        KeyUsage.ENCRYPT_DECRYPT,
        Algorithm.AES_256_GCM,
        1,
        False,
    )
    assert key.is_exportable is False
    assert authz.calls == [("create", P, None)]
    with pytest.raises(DuplicateName) as err:
        await svc.create(KeySpec(project_id=P, name="app-key"), authz)
    assert (
        err.value.message == 'A KMS key with the name "app-key" already exists for the project with ID "proj"'
    )


async def test_check_order_permission_before_disabled_before_usage(svc: KeyService) -> None:
    key = await svc.create(KeySpec(project_id=P, name="k"), Recorder())
    denied = Recorder(deny={"sign"})
    with pytest.raises(PermissionDenied):
        await svc.sign(key.id, SigningAlgorithm.ECDSA_SHA_256, b"m", False, denied)
    with pytest.raises(
        BadRequest, match="Unsupported key type, expected sign-verify but got encrypt-decrypt"
    ):
        await svc.sign(key.id, SigningAlgorithm.ECDSA_SHA_256, b"m", False, Recorder())
    await svc.update(key.id, Recorder(), is_disabled=True)
    # Authorise before revealing: a denied caller cannot tell a disabled key from an enabled one.
    with pytest.raises(PermissionDenied):
        await svc.encrypt(key.id, b"x", Recorder(deny={"encrypt"}))
    with pytest.raises(BadRequest, match=r"^Key is disabled$"):
        await svc.encrypt(key.id, b"x", Recorder())
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound, match=f'Key with ID "{missing}" not found'):
        await svc.encrypt(missing, b"x", Recorder())
    with pytest.raises(NotFound, match=f"^Key with ID {missing} not found$"):
        await svc.delete(missing, Recorder())


async def test_encrypt_rotate_decrypt_all_generations(svc: KeyService) -> None:
    authz = Recorder()
    key = await svc.create(KeySpec(project_id=P, name="rot"), authz)
    c1 = await svc.encrypt(key.id, b"one", authz)
    assert c1.endswith(b"v01") and len(c1) == 3 + 31
    key2 = await svc.rotate(key.id, authz)
    assert key2.version == 2
    c2 = await svc.encrypt(key.id, b"two", authz)
    assert c2.endswith(b"v02") and c2[-7:-3] == (2).to_bytes(4, "big")
    await svc.rotate(key.id, authz)
    c3 = await svc.encrypt(key.id, b"three", authz)
    for blob, pt in ((c1, b"one"), (c2, b"two"), (c3, b"three")):
        assert await svc.decrypt(key.id, blob, authz) == pt
    tampered = bytearray(c3)
    tampered[14] ^= 1
    with pytest.raises(DecryptionFailed):
        await svc.decrypt(key.id, bytes(tampered), authz)


async def test_rotation_refused_for_non_symmetric(svc: KeyService) -> None:
    authz = Recorder()
    ec = await svc.create(
        KeySpec(project_id=P, name="ec", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256),
        authz,
    )
    with pytest.raises(BadRequest, match=r"^Only encrypt-decrypt keys support rotation"):
        await svc.rotate(ec.id, authz)


async def test_keyring_is_cached_after_first_use(svc: KeyService) -> None:
    authz = Recorder()
    key = await svc.create(KeySpec(project_id=P, name="cached"), authz)
    await svc.encrypt(key.id, b"a", authz)
    before = CountingSealer.unseals
    for _ in range(5):
        await svc.encrypt(key.id, b"a", authz)
    assert CountingSealer.unseals == before


async def test_sign_verify_public_key_and_algorithms(svc: KeyService) -> None:
    authz = Recorder()
    key = await svc.create(
        KeySpec(
            project_id=P, name="ed", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_ED25519
        ),
        authz,
    )
    assert await svc.signing_algorithms(key.id, authz) == (
        SigningAlgorithm.ED25519_SHA_512,
        SigningAlgorithm.ED25519_PH_SHA_512,
    )
    sig = await svc.sign(key.id, SigningAlgorithm.ED25519_SHA_512, b"msg", False, authz)
    assert await svc.verify(key.id, SigningAlgorithm.ED25519_SHA_512, b"msg", sig, False, authz) is True
    assert await svc.verify(key.id, SigningAlgorithm.ED25519_SHA_512, b"msh", sig, False, authz) is False
    assert len(await svc.public_key(key.id, authz)) == 44  # DER SPKI of Ed25519
    aes = await svc.create(KeySpec(project_id=P, name="aes"), authz)
    with pytest.raises(BadRequest, match=f"^Key with ID '{aes.id}' is not intended for signing$"):
        await svc.signing_algorithms(aes.id, authz)
    with pytest.raises(
        BadRequest, match="expected sign-verify or key-agreement type but got encrypt-decrypt"
    ):
        await svc.public_key(aes.id, authz)


async def test_export_gated_by_exportable(svc: KeyService) -> None:
    authz = Recorder()
    locked = await svc.create(KeySpec(project_id=P, name="locked"), authz)
    with pytest.raises(BadRequest, match=r"^You are not allowed to export this key$"):
        await svc.export_private_key(locked.id, authz)
    open_key = await svc.create(KeySpec(project_id=P, name="open", is_exportable=True), authz)
    raw = await svc.export_private_key(open_key.id, authz)
    assert len(raw) == 32
    assert ("export-private-key", P, "open") in authz.calls


async def test_bulk_import_and_export(svc: KeyService) -> None:
    authz = Recorder()
    raw = os.urandom(32)
    entry = ImportEntry("imp", KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, raw, is_exportable=True)
    keys, errors = await svc.bulk_import(P, [entry], authz)
    assert [k.name for k in keys] == ["imp"] and errors == []
    keys, errors = await svc.bulk_import(
        P, [entry, ImportEntry("short", KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, raw[:31])], authz
    )
    assert keys == []
    assert errors[0] == ("imp", 'A key with the name "imp" already exists in this project')
    assert errors[1][0] == "short" and "Expected 32 bytes, got 31" in errors[1][1]
    (imp,) = (await svc.list(ListQuery(project_id=P), authz))[0]
    exported = await svc.bulk_export([imp.id, imp.id], authz)
    assert len(exported) == 1 and exported[0].private_key == raw and exported[0].public_key is None
    other = await svc.create(KeySpec(project_id="other", name="x", is_exportable=True), authz)
    with pytest.raises(BadRequest, match=r"^All keys must belong to the same project$"):
        await svc.bulk_export([imp.id, other.id], authz)
    with pytest.raises(NotFound, match=r"^No keys found for the provided IDs$"):
        await svc.bulk_export(["00000000-0000-4000-8000-000000000001"], authz)


async def test_no_key_material_in_logs(svc: KeyService, caplog: pytest.LogCaptureFixture) -> None:
    """Issue acceptance: a full create/encrypt/rotate/export cycle logs no raw key bytes."""
    caplog.set_level(logging.DEBUG)
    authz = Recorder()
    key = await svc.create(KeySpec(project_id=P, name="hyg", is_exportable=True), authz)
    ct = await svc.encrypt(key.id, b"secret-plaintext", authz)
    await svc.rotate(key.id, authz)
    await svc.decrypt(key.id, ct, authz)
    raw = await svc.export_private_key(key.id, authz)
    ring = await svc.keyring(await svc.get(key.id, authz))
    secrets = [raw, material.export_private(Algorithm.AES_256_GCM, raw)]
    assert ring.current_version == 2
    with pytest.raises(DecryptionFailed):
        await svc.decrypt(key.id, ct[:-5] + b"xxv01", authz)
    assert any(r.getMessage() == "keyring loaded" for r in caplog.records)
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for s in secrets:
        for form in (s.hex(), base64.b64encode(s).decode(), repr(s)):
            assert form not in text
    assert "secret-plaintext" not in text
