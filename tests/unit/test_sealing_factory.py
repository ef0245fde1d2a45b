"""Sealer selection from the environment, and the embedded-mode development root key file."""

from __future__ import annotations

import base64
import hashlib
import logging
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from fixtures.softhsm import HsmConfig
from kms_core.errors import ConfigError
from kms_core.sealing import Pkcs11Sealer, RootKeySealer, describe, from_env, material_aad

KEY = os.urandom(32)
KEY_B64 = base64.b64encode(KEY).decode()
AAD = material_aad("key", 1, "aes-256-gcm")


def _kek_id(key: bytes) -> str:
    return hashlib.sha256(key).digest()[:8].hex()


def test_root_encryption_key_is_used() -> None:
    sealer = from_env({"ROOT_ENCRYPTION_KEY": KEY_B64})
    assert isinstance(sealer, RootKeySealer)
    assert sealer.kek_id == _kek_id(KEY)


def test_root_encryption_key_wins_over_the_data_dir(tmp_path: Path) -> None:
    sealer = from_env({"ROOT_ENCRYPTION_KEY": KEY_B64}, data_dir=tmp_path / "data")
    assert sealer.kek_id == _kek_id(KEY)
    assert not (tmp_path / "data" / "root.key").exists()


@pytest.mark.parametrize("env", [{}, {"ROOT_ENCRYPTION_KEY": ""}, {"HSM_LIB_PATH": "  "}])
def test_nothing_configured_outside_embedded_mode(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ROOT_ENCRYPTION_KEY"):
        from_env(env)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!!!" + KEY_B64[4:], "not valid base64"),
        (base64.b64encode(KEY[:31]).decode(), "got 31 bytes"),
        (base64.b64encode(KEY + b"x").decode(), "got 33 bytes"),
    ],
)
def test_invalid_root_encryption_key_names_the_variable_not_the_value(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_env({"ROOT_ENCRYPTION_KEY": value})
    message = str(info.value)
    assert "ROOT_ENCRYPTION_KEY" in message and expected in message
    assert value not in message and KEY_B64[4:20] not in message


def test_data_dir_key_is_generated_once_with_private_modes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "nested" / "data"
    with caplog.at_level(logging.INFO, logger="kms_core.sealing"):
        first = from_env({}, data_dir=data_dir)
    path = data_dir / "root.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    stored = base64.b64decode(path.read_text().strip(), validate=True)
    assert len(stored) == 32
    assert first.kek_id == _kek_id(stored)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "DEVELOPMENT" in warnings[0].getMessage() and "back it up" in warnings[0].getMessage()
    assert path.read_text().strip() not in caplog.text

    caplog.clear()
    content = path.read_bytes()
    with caplog.at_level(logging.INFO, logger="kms_core.sealing"):
        second = from_env({}, data_dir=data_dir)
    assert second.kek_id == first.kek_id
    assert second.unseal(first.seal(b"material", AAD), AAD) == b"material"
    assert path.read_bytes() == content
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_existing_root_key_file_is_read_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_text(KEY_B64 + "\n")
    path.chmod(0o600)
    assert from_env({}, data_dir=tmp_path).kek_id == _kek_id(KEY)
    assert path.read_text() == KEY_B64 + "\n"


def test_corrupt_root_key_file_is_refused_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_text(base64.b64encode(KEY[:20]).decode() + "\n")
    with pytest.raises(ConfigError) as info:
        from_env({}, data_dir=tmp_path)
    assert str(path) in str(info.value) and "got 20 bytes" in str(info.value)
    assert base64.b64encode(KEY[:20]).decode() not in str(info.value)
    assert path.read_text() == base64.b64encode(KEY[:20]).decode() + "\n"


def _race(
    data_dir: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[str]
) -> None:
    barrier.wait()
    out.put(from_env({}, data_dir=Path(data_dir)).kek_id)


def test_two_processes_creating_the_key_at_once_agree(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(8):
        data_dir = tmp_path / f"round{round_}"
        barrier = ctx.Barrier(2)
        out: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(data_dir), barrier, out)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        ids = {out.get(timeout=5), out.get(timeout=5)}
        stored = base64.b64decode((data_dir / "root.key").read_text().strip(), validate=True)
        assert ids == {_kek_id(stored)}
        assert sorted(os.listdir(data_dir)) == ["root.key"]


def _hsm_env(softhsm: HsmConfig, **overrides: str) -> dict[str, str]:
    env = {**softhsm.env, "HSM_KEY_LABEL": "factory-kek", "HSM_CREATE_KEY": "true", **overrides}
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_hsm_is_chosen_when_lib_path_is_set(softhsm: HsmConfig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kms_core.sealing"):
        sealer = from_env(_hsm_env(softhsm, ROOT_ENCRYPTION_KEY=KEY_B64))
    try:
        assert isinstance(sealer, Pkcs11Sealer)
        assert sealer.backend == "pkcs11"
        assert sealer.unseal(sealer.seal(b"material", AAD), AAD) == b"material"
        assert "ROOT_ENCRYPTION_KEY is ignored" in caplog.text
        line = describe(sealer)
        assert "backend=pkcs11" in line and sealer.kek_id in line and softhsm.token_label in line
        assert softhsm.pin not in line
    finally:
        sealer.close()


def test_hsm_without_create_key_needs_an_existing_key(softhsm: HsmConfig) -> None:
    with pytest.raises(ConfigError, match="HSM key 'absent-kek' not found on token"):
        from_env(_hsm_env(softhsm, HSM_KEY_LABEL="absent-kek", HSM_CREATE_KEY="false"))


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"HSM_PIN": "<unset>"}, "HSM_PIN"),
        ({"HSM_KEY_LABEL": ""}, "HSM_KEY_LABEL"),
        ({"HSM_TOKEN_LABEL": "<unset>"}, "HSM_SLOT or HSM_TOKEN_LABEL"),
        ({"HSM_SLOT": "zero"}, "HSM_SLOT"),
        ({"HSM_CREATE_KEY": "maybe"}, "HSM_CREATE_KEY"),
    ],
)
def test_incomplete_hsm_config_names_the_variable(
    softhsm: HsmConfig, overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        from_env(_hsm_env(softhsm, **overrides))
    assert variable in str(info.value)
    assert softhsm.pin not in str(info.value)


def test_describe_root_key_never_shows_material() -> None:
    line = describe(RootKeySealer(KEY))
    assert line == f"sealing backend=rootkey kek_id={_kek_id(KEY)}"
    assert KEY_B64 not in line and KEY.hex() not in line


def test_reader_waits_for_a_creator_still_writing(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.touch(mode=0o600)  # created with O_EXCL by another process, not yet written
    writer = threading.Timer(0.2, lambda: path.write_text(KEY_B64 + "\n"))
    writer.start()
    try:
        assert from_env({}, data_dir=tmp_path).kek_id == _kek_id(KEY)
    finally:
        writer.join()
