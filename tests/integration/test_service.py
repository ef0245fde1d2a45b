"""KeyService on a real SQLite store and a real root-key sealer: check order, usages, rotation,
import/export, caching, and log hygiene (no key material in any log line)."""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fixtures.callers import POLICY, Caller
from kms_core import material
from kms_core.errors import BadRequest, DecryptionFailed, DuplicateName, NotFound, PermissionDenied
from kms_core.model import Algorithm, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.policy import Action
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.base import ListQuery
from kms_core.stores.sqlite import SqliteStore
from kms_core.transfer import ImportEntry

P = "proj"


class Recorder(Caller):
    """A caller whose checks are recorded and who is denied the actions it is told to deny."""

    def __init__(self, deny: set[str] | None = None) -> None:
        super().__init__()
        self.deny = deny or set()

    def decide(self, action: Action, project_id: str, key_name: str | None) -> None:
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
    service = KeyService(store, sealer, POLICY)
    yield service
    await service.close()


async def test_create_defaults_and_duplicate(svc: KeyService) -> None:
    authz = Recorder()
    key = (await svc.create(authz.identity, KeySpec(project_id=P, name="app-key"))).result
    assert (key.key_usage, key.algorithm, key.version, key.is_disabled) == (
        KeyUsage.ENCRYPT_DECRYPT,
        Algorithm.AES_256_GCM,
        1,
        False,
    )
    assert key.is_exportable is False
    assert authz.calls == [("create", P, None)]
    with pytest.raises(DuplicateName) as err:
        await svc.create(authz.identity, KeySpec(project_id=P, name="app-key"))
    assert (
        err.value.message == 'A KMS key with the name "app-key" already exists for the project with ID "proj"'
    )


async def test_check_order_permission_before_disabled_before_usage(svc: KeyService) -> None:
    key = (await svc.create(Recorder().identity, KeySpec(project_id=P, name="k"))).result
    denied = Recorder(deny={"sign"})
    with pytest.raises(PermissionDenied):
        await svc.sign(denied.identity, key.id, SigningAlgorithm.ECDSA_SHA_256, b"m", False)
    with pytest.raises(
        BadRequest, match="Unsupported key type, expected sign-verify but got encrypt-decrypt"
    ):
        await svc.sign(Recorder().identity, key.id, SigningAlgorithm.ECDSA_SHA_256, b"m", False)
    await svc.update(Recorder().identity, key.id, is_disabled=True)
    # Authorise before revealing: a denied caller cannot tell a disabled key from an enabled one.
    with pytest.raises(PermissionDenied):
        await svc.encrypt(Recorder(deny={"encrypt"}).identity, key.id, b"x")
    with pytest.raises(BadRequest, match=r"^Key is disabled$"):
        await svc.encrypt(Recorder().identity, key.id, b"x")
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound, match=f'Key with ID "{missing}" not found'):
        await svc.encrypt(Recorder().identity, missing, b"x")
    with pytest.raises(NotFound, match=f"^Key with ID {missing} not found$"):
        await svc.delete(Recorder().identity, missing)


async def test_encrypt_rotate_decrypt_all_generations(svc: KeyService) -> None:
    authz = Recorder()
    key = (await svc.create(authz.identity, KeySpec(project_id=P, name="rot"))).result
    c1 = (await svc.encrypt(authz.identity, key.id, b"one")).result
    assert c1.endswith(b"v01") and len(c1) == 3 + 31
    key2 = (await svc.rotate(authz.identity, key.id)).result
    assert key2.version == 2
    c2 = (await svc.encrypt(authz.identity, key.id, b"two")).result
    assert c2.endswith(b"v02") and c2[-7:-3] == (2).to_bytes(4, "big")
    await svc.rotate(authz.identity, key.id)
    c3 = (await svc.encrypt(authz.identity, key.id, b"three")).result
    for blob, pt in ((c1, b"one"), (c2, b"two"), (c3, b"three")):
        assert (await svc.decrypt(authz.identity, key.id, blob)).result == pt
    tampered = bytearray(c3)
    tampered[14] ^= 1
    with pytest.raises(DecryptionFailed):
        await svc.decrypt(authz.identity, key.id, bytes(tampered))


async def test_rotation_refused_for_non_symmetric(svc: KeyService) -> None:
    authz = Recorder()
    spec = KeySpec(project_id=P, name="ec", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256)
    ec = (await svc.create(authz.identity, spec)).result
    with pytest.raises(BadRequest, match=r"^Only encrypt-decrypt keys support rotation"):
        await svc.rotate(authz.identity, ec.id)


async def test_keyring_is_cached_after_first_use(svc: KeyService) -> None:
    authz = Recorder()
    key = (await svc.create(authz.identity, KeySpec(project_id=P, name="cached"))).result
    await svc.encrypt(authz.identity, key.id, b"a")
    before = CountingSealer.unseals
    for _ in range(5):
        await svc.encrypt(authz.identity, key.id, b"a")
    assert CountingSealer.unseals == before


async def test_sign_verify_public_key_and_algorithms(svc: KeyService) -> None:
    authz = Recorder()
    spec = KeySpec(
        project_id=P, name="ed", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_ED25519
    )
    key = (await svc.create(authz.identity, spec)).result
    assert (await svc.signing_algorithms(authz.identity, key.id)).result == (
        SigningAlgorithm.ED25519_SHA_512,
        SigningAlgorithm.ED25519_PH_SHA_512,
    )
    ed = SigningAlgorithm.ED25519_SHA_512
    sig = (await svc.sign(authz.identity, key.id, ed, b"msg", False)).result
    assert (await svc.verify(authz.identity, key.id, ed, b"msg", sig, False)).result is True
    assert (await svc.verify(authz.identity, key.id, ed, b"msh", sig, False)).result is False
    assert len((await svc.public_key(authz.identity, key.id)).result) == 44  # DER SPKI of Ed25519
    aes = (await svc.create(authz.identity, KeySpec(project_id=P, name="aes"))).result
    with pytest.raises(BadRequest, match=f"^Key with ID '{aes.id}' is not intended for signing$"):
        await svc.signing_algorithms(authz.identity, aes.id)
    with pytest.raises(
        BadRequest, match="expected sign-verify or key-agreement type but got encrypt-decrypt"
    ):
        await svc.public_key(authz.identity, aes.id)


async def test_export_gated_by_exportable(svc: KeyService) -> None:
    authz = Recorder()
    locked = (await svc.create(authz.identity, KeySpec(project_id=P, name="locked"))).result
    with pytest.raises(BadRequest, match=r"^You are not allowed to export this key$"):
        await svc.export_private_key(authz.identity, locked.id)
    open_spec = KeySpec(project_id=P, name="open", is_exportable=True)
    open_key = (await svc.create(authz.identity, open_spec)).result
    raw = (await svc.export_private_key(authz.identity, open_key.id)).result
    assert len(raw) == 32
    assert ("export-private-key", P, "open") in authz.calls


async def test_bulk_import_and_export(svc: KeyService) -> None:
    authz = Recorder()
    raw = os.urandom(32)
    entry = ImportEntry("imp", KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, raw, is_exportable=True)
    keys, errors = (await svc.bulk_import(authz.identity, P, [entry])).result
    assert [k.name for k in keys] == ["imp"] and errors == []
    short = ImportEntry("short", KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, raw[:31])
    keys, errors = (await svc.bulk_import(authz.identity, P, [entry, short])).result
    assert keys == []
    assert errors[0] == ("imp", 'A key with the name "imp" already exists in this project')
    assert errors[1][0] == "short" and "Expected 32 bytes, got 31" in errors[1][1]
    (imp,) = (await svc.list(authz.identity, ListQuery(project_id=P))).result[0]
    exported = (await svc.bulk_export(authz.identity, [imp.id, imp.id])).result
    assert len(exported) == 1 and exported[0].private_key == raw and exported[0].public_key is None
    other_spec = KeySpec(project_id="other", name="x", is_exportable=True)
    other = (await svc.create(authz.identity, other_spec)).result
    with pytest.raises(BadRequest, match=r"^All keys must belong to the same project$"):
        await svc.bulk_export(authz.identity, [imp.id, other.id])
    with pytest.raises(NotFound, match=r"^No keys found for the provided IDs$"):
        await svc.bulk_export(authz.identity, ["00000000-0000-4000-8000-000000000001"])


async def test_no_key_material_in_logs(svc: KeyService, caplog: pytest.LogCaptureFixture) -> None:
    """Issue acceptance: a full create/encrypt/rotate/export cycle logs no raw key bytes."""
    caplog.set_level(logging.DEBUG)
    authz = Recorder()
    key = (await svc.create(authz.identity, KeySpec(project_id=P, name="hyg", is_exportable=True))).result
    ct = (await svc.encrypt(authz.identity, key.id, b"secret-plaintext")).result
    await svc.rotate(authz.identity, key.id)
    await svc.decrypt(authz.identity, key.id, ct)
    raw = (await svc.export_private_key(authz.identity, key.id)).result
    ring = await svc.keyring((await svc.get(authz.identity, key.id)).result)
    secrets = [raw, material.export_private(Algorithm.AES_256_GCM, raw)]
    assert ring.current_version == 2
    with pytest.raises(DecryptionFailed):
        await svc.decrypt(authz.identity, key.id, ct[:-5] + b"xxv01")
    assert any(r.getMessage() == "keyring loaded" for r in caplog.records)
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for s in secrets:
        for form in (s.hex(), base64.b64encode(s).decode(), repr(s)):
            assert form not in text
    assert "secret-plaintext" not in text



class ThreadNoting(RootKeySealer):
    """A real root-key sealer that reports itself as `backend` and notes the threads it seals on."""

    def __init__(self, root: bytes, backend: str) -> None:
        super().__init__(root)
        self._backend = backend
        self.seal_threads: list[int] = []

    @property
    def backend(self) -> str:
        return self._backend

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        self.seal_threads.append(threading.get_ident())
        return super().seal(plaintext, aad)


@pytest.mark.parametrize(("backend", "off_loop"), [("pkcs11", True), ("rootkey", False)])
async def test_bulk_import_seals_off_the_event_loop_with_an_hsm(
    tmp_path: Path, backend: str, off_loop: bool
) -> None:
    sealer = ThreadNoting(os.urandom(32), backend)
    service = KeyService(SqliteStore.open(tmp_path, sealer.kek_id), sealer, POLICY)
    try:
        entry = ImportEntry("imp", KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_256_GCM, os.urandom(32))
        keys, errors = (await service.bulk_import(Recorder().identity, P, [entry])).result
        assert [k.name for k in keys] == ["imp"] and errors == []
        assert len(sealer.seal_threads) == 1
        assert (sealer.seal_threads[0] != threading.get_ident()) is off_loop
    finally:
        await service.close()
