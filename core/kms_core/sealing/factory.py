"""Choose and build the process's sealer from its environment.

Order: an HSM when `HSM_LIB_PATH` is set; else `ROOT_ENCRYPTION_KEY`; else, in embedded mode only
(a data directory is given), a development root key generated once into `<data-dir>/root.key`.

Security property: configuration errors name the variable, never its value; `root.key` is
created 0600 with O_EXCL (two processes starting together never make two keys) and an existing
file is only ever read, never overwritten, because it is the only key to the data it sealed.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from kms_core.errors import ConfigError
from kms_core.sealing.base import Sealer
from kms_core.sealing.pkcs11 import Pkcs11Sealer
from kms_core.sealing.rootkey import ROOT_KEY_SIZE, RootKeySealer, decode_root_key

log = logging.getLogger("kms_core.sealing")

ROOT_KEY_FILE = "root.key"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
# How long a reader waits for a concurrent creator to finish writing root.key.
_CREATE_WAIT_S = 5.0


def _get(env: Mapping[str, str], name: str) -> str | None:
    # Helm and Compose often render unset values as "": treat them as unset.
    value = env.get(name, "").strip()
    return value or None


def _require(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if value is None:
        raise ConfigError(f"{name} is required when HSM_LIB_PATH is set")
    return value


def _hsm_from_env(env: Mapping[str, str]) -> Pkcs11Sealer:
    lib_path = _require(env, "HSM_LIB_PATH")
    pin = env.get("HSM_PIN", "")  # a PIN is taken verbatim: spaces may be part of it
    if not pin:
        raise ConfigError("HSM_PIN is required when HSM_LIB_PATH is set")
    key_label = _require(env, "HSM_KEY_LABEL")
    token_label = _get(env, "HSM_TOKEN_LABEL")
    slot_text = _get(env, "HSM_SLOT")
    if slot_text is None and token_label is None:
        raise ConfigError("HSM_SLOT or HSM_TOKEN_LABEL is required when HSM_LIB_PATH is set")
    slot: int | None = None
    if slot_text is not None:
        try:
            slot = int(slot_text, 10)
        except ValueError:
            raise ConfigError("HSM_SLOT must be a decimal slot id") from None
    create_text = (_get(env, "HSM_CREATE_KEY") or "").lower()
    if create_text not in _TRUE | _FALSE:
        raise ConfigError("HSM_CREATE_KEY must be true or false")
    if _get(env, "ROOT_ENCRYPTION_KEY") is not None:
        log.warning("HSM_LIB_PATH is set: ROOT_ENCRYPTION_KEY is ignored, keys are sealed by the HSM")
    return Pkcs11Sealer(
        lib_path,
        pin,
        key_label,
        slot=slot,
        token_label=token_label,
        create_key=create_text in _TRUE,
    )


def _read_root_key(path: Path) -> bytes:
    """Read root.key, waiting briefly if another process has created it but not yet written it."""
    deadline = time.monotonic() + _CREATE_WAIT_S
    while True:
        text = path.read_text(encoding="ascii", errors="replace")
        # The creator writes the whole key in one write(): only an empty file is still in progress.
        if text.strip() or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by group or others (mode %o); chmod 600 it", path, mode)
    return decode_root_key(text, source=str(path))


def _create_root_key(path: Path) -> bytes | None:
    """Create root.key with a fresh key; None if it already exists (the caller reads it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return None
    key = os.urandom(ROOT_KEY_SIZE)
    try:
        os.fchmod(fd, 0o600)  # exact mode whatever the umask
        # Base64, so the file's content can be copied into ROOT_ENCRYPTION_KEY as it is.
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def root_key_from_dir(data_dir: Path) -> RootKeySealer:
    """The embedded-mode development root key: `<data_dir>/root.key`, generated on first use."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / ROOT_KEY_FILE
    key = _create_root_key(path)
    if key is None:
        sealer = RootKeySealer(_read_root_key(path))
        log.info("using the root key in %s (kek_id %s)", path, sealer.kek_id)
        return sealer
    sealer = RootKeySealer(key)
    log.warning(
        "Generated a DEVELOPMENT root key in %s (kek_id %s). It is the only key that can unseal "
        "this data directory: back it up now, and set ROOT_ENCRYPTION_KEY or an HSM in production.",
        path,
        sealer.kek_id,
    )
    return sealer


def from_env(env: Mapping[str, str], data_dir: Path | None = None) -> Sealer:
    """Build the sealer the environment asks for; ConfigError naming the variable when it cannot.

    `data_dir` is given in embedded mode only; it allows the generated development root key.
    """
    if _get(env, "HSM_LIB_PATH") is not None:
        return _hsm_from_env(env)
    root_key = _get(env, "ROOT_ENCRYPTION_KEY")
    if root_key is not None:
        return RootKeySealer.from_base64(root_key, "ROOT_ENCRYPTION_KEY")
    if data_dir is not None:
        return root_key_from_dir(data_dir)
    raise ConfigError(
        "no key-encryption key configured: set ROOT_ENCRYPTION_KEY (base64 of 32 random bytes) "
        "or HSM_LIB_PATH with HSM_PIN, HSM_KEY_LABEL and HSM_SLOT or HSM_TOKEN_LABEL"
    )


def describe(sealer: Sealer) -> str:
    """One startup log line naming the sealing backend and KEK id (never key material or PIN)."""
    line = f"sealing backend={sealer.backend} kek_id={sealer.kek_id}"
    if isinstance(sealer, Pkcs11Sealer):
        line += f" token={sealer.token_label!r} key={sealer.key_label!r}"
    return line
