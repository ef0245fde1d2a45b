"""PKCS#11 sealing against a real SoftHSMv2 token."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11

from fixtures.softhsm import HsmConfig, init_token
from kms_core.errors import ConfigError, Unavailable
from kms_core.model import Algorithm
from kms_core.sealing import Pkcs11Sealer, RootKeySealer, Sealer, UnsealError, blob_kek_id, material_aad
from kms_core.sealing import pkcs11 as pkcs11_sealing

AAD = material_aad("6a1f0c55-0000-4000-8000-000000000001", 1, Algorithm.AES_256_GCM)
KEK = "sealing-kek"


def _sealer(hsm: HsmConfig, label: str = KEK, *, create_key: bool = True) -> Pkcs11Sealer:
    return Pkcs11Sealer(hsm.lib_path, hsm.pin, label, token_label=hsm.token_label, create_key=create_key)


@pytest.fixture
def sealer(softhsm: HsmConfig) -> Iterator[Pkcs11Sealer]:
    s = _sealer(softhsm)
    yield s
    s.close()


def test_round_trip(sealer: Pkcs11Sealer) -> None:
    assert isinstance(sealer, Sealer)
    assert sealer.backend == "pkcs11"
    for size in (0, 1, 32, 5000):
        plaintext = os.urandom(size)
        sealed = sealer.seal(plaintext, AAD)
        assert len(sealed) == 2 + 16 + 12 + size + 16
        assert blob_kek_id(sealed) == sealer.kek_id
        assert sealer.unseal(sealed, AAD) == plaintext


def test_aad_and_tampering_fail_as_unseal_errors(sealer: Pkcs11Sealer) -> None:
    sealed = sealer.seal(b"material", AAD)
    other = material_aad("6a1f0c55-0000-4000-8000-000000000001", 2, Algorithm.AES_256_GCM)
    with pytest.raises(UnsealError):
        sealer.unseal(sealed, other)
    for index in range(18, len(sealed)):  # every byte after the kek id header: nonce, ct, tag
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(UnsealError):
            sealer.unseal(bytes(tampered), AAD)
    for length in range(41):
        with pytest.raises(UnsealError):
            sealer.unseal(sealed[:length], AAD)
    # The session survives failed decryptions.
    assert sealer.unseal(sealed, AAD) == b"material"


def test_root_key_blob_is_refused_naming_both_kek_ids(sealer: Pkcs11Sealer) -> None:
    root = RootKeySealer(os.urandom(32))
    with pytest.raises(UnsealError) as info:
        sealer.unseal(root.seal(b"material", AAD), AAD)
    assert root.kek_id in str(info.value) and sealer.kek_id in str(info.value)


def test_key_on_token_is_sensitive_and_not_extractable(sealer: Pkcs11Sealer, softhsm: HsmConfig) -> None:
    token = pkcs11.lib(softhsm.lib_path).get_token(token_label=softhsm.token_label)
    # The token is logged in by the sealer: a new session of this process shares that login.
    with token.open() as session:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=KEK)
        assert key.key_length == 256
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.NEVER_EXTRACTABLE] is True
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.WRAP] is False
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]


def test_second_instance_finds_key_and_unseals(softhsm: HsmConfig) -> None:
    first = _sealer(softhsm, "reopen-kek")
    sealed = first.seal(b"material", AAD)
    kek_id = first.kek_id
    # While the first is open the second shares its session; after both close, a third starts
    # from a fresh library initialisation, session and login.
    second = _sealer(softhsm, "reopen-kek", create_key=False)
    assert second.kek_id == kek_id and second.unseal(sealed, AAD) == b"material"
    first.close()
    assert second.unseal(sealed, AAD) == b"material"
    second.close()
    with _sealer(softhsm, "reopen-kek", create_key=False) as third:
        assert third.kek_id == kek_id
        assert third.unseal(sealed, AAD) == b"material"


def test_another_process_unseals_with_the_same_key(softhsm: HsmConfig) -> None:
    with _sealer(softhsm, "process-kek") as sealer:
        sealed = sealer.seal(b"across processes", AAD)
        code = (
            "import os, sys; from kms_core.sealing import from_env, material_aad;"
            "s = from_env(os.environ); aad = material_aad(*sys.argv[2:5]);"
            "sys.stdout.write(s.kek_id + ' ' + s.unseal(bytes.fromhex(sys.argv[1]), aad).decode())"
        )
        env = {**os.environ, **softhsm.env, "HSM_KEY_LABEL": "process-kek"}
        key_id, version, algorithm = AAD.decode().split("|")[1:]
        out = subprocess.run(
            [sys.executable, "-c", code, sealed.hex(), key_id, version, algorithm],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out == f"{sealer.kek_id} across processes"


def test_kek_id_identifies_the_key_not_the_label(softhsm: HsmConfig) -> None:
    with _sealer(softhsm, "kcv-a") as a, _sealer(softhsm, "kcv-b") as b:
        assert a.kek_id != b.kek_id
        with pytest.raises(UnsealError):
            b.unseal(a.seal(b"material", AAD), AAD)
        kek_a = a.kek_id
    # Same label on a second token: a different key, so a different kek_id.
    other_token = f"second-{secrets.token_hex(3)}"
    other_pin = init_token(softhsm.conf_path, other_token)
    with Pkcs11Sealer(softhsm.lib_path, other_pin, "kcv-a", token_label=other_token, create_key=True) as c:
        assert c.token_label == other_token
        assert c.kek_id != kek_a
        with _sealer(softhsm, "kcv-a", create_key=False) as again:
            assert again.kek_id == kek_a


def test_wrong_pin_is_a_clear_error(softhsm: HsmConfig) -> None:
    wrong = "0000" + secrets.token_hex(4)
    with pytest.raises(ConfigError) as info:
        Pkcs11Sealer(softhsm.lib_path, wrong, KEK, token_label=softhsm.token_label)
    assert "PinIncorrect" in str(info.value) and softhsm.token_label in str(info.value)
    assert wrong not in str(info.value) and softhsm.pin not in str(info.value)
    # The failed login leaves nothing behind: the right PIN works next.
    with _sealer(softhsm) as ok:
        assert ok.unseal(ok.seal(b"m", AAD), AAD) == b"m"
        # A second sealer may not bypass the PIN because the token is already logged in.
        with pytest.raises(ConfigError, match="another PIN"):
            Pkcs11Sealer(softhsm.lib_path, wrong, KEK, token_label=softhsm.token_label)


def test_missing_key_without_create_key(softhsm: HsmConfig) -> None:
    with pytest.raises(ConfigError) as info:
        Pkcs11Sealer(softhsm.lib_path, softhsm.pin, "never-made", token_label=softhsm.token_label)
    assert str(info.value) == f"HSM key 'never-made' not found on token '{softhsm.token_label}'"


def test_extractable_key_is_refused(softhsm: HsmConfig) -> None:
    token = pkcs11.lib(softhsm.lib_path).get_token(token_label=softhsm.token_label)
    with token.open(rw=True, user_pin=softhsm.pin) as session:
        session.generate_key(
            KeyType.AES, 256, label="exportable-kek", store=True, template={Attribute.EXTRACTABLE: True}
        )
    with pytest.raises(ConfigError, match="extractable"):
        _sealer(softhsm, "exportable-kek", create_key=False)


def test_concurrent_seal_and_unseal_from_8_threads(softhsm: HsmConfig) -> None:
    # Two tokens, so two sessions: threads interleave calls on both, serialised only by our lock.
    other_token = f"threads-{secrets.token_hex(3)}"
    other_pin = init_token(softhsm.conf_path, other_token)
    with (
        _sealer(softhsm) as first,
        Pkcs11Sealer(softhsm.lib_path, other_pin, KEK, token_label=other_token, create_key=True) as second,
    ):
        _hammer([first, second])


def _hammer(sealers: list[Pkcs11Sealer]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        sealer = sealers[n % len(sealers)]
        try:
            start.wait()
            for i in range(100):
                plaintext = f"{n}:{i}".encode() * (1 + i % 7)
                aad = material_aad(f"thread-{n}", i, Algorithm.AES_256_GCM)
                assert sealer.unseal(sealer.seal(plaintext, aad), aad) == plaintext
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert not any(t.is_alive() for t in threads)


def test_token_lookup_by_slot_id(softhsm: HsmConfig, sealer: Pkcs11Sealer) -> None:
    slot_id = pkcs11.lib(softhsm.lib_path).get_token(token_label=softhsm.token_label).slot.slot_id
    sealed = sealer.seal(b"material", AAD)
    with Pkcs11Sealer(softhsm.lib_path, softhsm.pin, KEK, slot=slot_id) as by_slot:
        assert by_slot.kek_id == sealer.kek_id and by_slot.unseal(sealed, AAD) == b"material"
    with pytest.raises(ConfigError, match="holds token"):
        Pkcs11Sealer(softhsm.lib_path, softhsm.pin, KEK, slot=slot_id, token_label="another-token")
    with pytest.raises(ConfigError, match="slot 4242 not found"):
        Pkcs11Sealer(softhsm.lib_path, softhsm.pin, KEK, slot=4242)
    with pytest.raises(ConfigError, match="token 'no-such-token' not found"):
        Pkcs11Sealer(softhsm.lib_path, softhsm.pin, KEK, token_label="no-such-token")


def test_missing_library_is_a_config_error(softhsm: HsmConfig) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Pkcs11Sealer("/nonexistent/libpkcs11.so", softhsm.pin, KEK, token_label=softhsm.token_label)


def test_close_is_idempotent_and_final(softhsm: HsmConfig) -> None:
    s = _sealer(softhsm)
    sealed = s.seal(b"material", AAD)
    s.close()
    s.close()
    with pytest.raises(Unavailable, match="HSM unavailable"):
        s.seal(b"material", AAD)
    with pytest.raises(Unavailable, match="HSM unavailable"):
        s.unseal(sealed, AAD)


def test_every_token_call_waits_for_the_process_lock(sealer: Pkcs11Sealer) -> None:
    done: list[bytes] = []
    with pkcs11_sealing._LOCK:
        worker = threading.Thread(target=lambda: done.append(sealer.seal(b"material", AAD)))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and done == []
    worker.join(10)
    assert len(done) == 1 and sealer.unseal(done[0], AAD) == b"material"
