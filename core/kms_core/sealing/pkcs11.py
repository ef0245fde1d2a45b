"""A sealer whose key-encryption key is an AES-256 key inside an HSM, used through PKCS#11.

The key never leaves the token: it is created (only when asked) sensitive, non-extractable and
limited to encrypt/decrypt; an existing extractable key is refused. Sealing is CKM_AES_GCM with
our random 96-bit nonce, the caller's AAD and a 128-bit tag, in the shared `blob` layout.

SoftHSM (like many libraries initialised without locking callbacks) is not thread-safe, and
login state is per token per process: so every PKCS#11 call runs under one process-wide lock,
sealers on one token share one logged-in session, and the library is finalised when the last
session closes (the next sealer starts from a fresh C_Initialize and sees new tokens).

Security property: the PIN never appears in logs or errors (only its digest is kept, to refuse a
second sealer presenting another PIN to a logged-in token); `kek_id` is a key check value, so a
different key under the same label is detected.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import DecryptMixin, EncryptMixin

from kms_core.errors import ConfigError, Unavailable
from kms_core.sealing import blob as blob_format
from kms_core.sealing.base import UnsealError

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library

# A bound encrypt/decrypt method of a key on the token.
_Operation = Callable[..., bytes | Iterator[bytes]]

# One lock for every PKCS#11 call in the process (the library may not be thread-safe).
_LOCK = threading.RLock()

# Failures that mean the token or session is gone, as opposed to a blob that does not decrypt.
_DEVICE_ERRORS: tuple[type[Exception], ...] = (
    p11.DeviceError, p11.DeviceMemory, p11.DeviceRemoved, p11.HostMemory, p11.SessionClosed,
    p11.SessionHandleInvalid, p11.TokenNotPresent, p11.TokenNotRecognised, p11.UserNotLoggedIn,
    p11.KeyHandleInvalid, p11.ObjectHandleInvalid, p11.FunctionCancelled,
)  # fmt: skip
_PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked, p11.PinExpired)

# Key check value input: a GCM encryption of a constant under a nonce our random nonces never hit
# in practice (2^-96); only a digest of its output is published.
_KCV_NONCE = bytes(12)
_KCV_PLAINTEXT = b"kubekms key check value v1"


def _reason(exc: BaseException) -> str:
    # python-pkcs11 messages are usually empty; the class name is the PKCS#11 return code.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _TokenSession:
    """The process's one logged-in session on a token, shared by every sealer using it."""

    lib_path: str
    token: pkcs11.Token
    session: pkcs11.Session
    pin_digest: bytes
    users: int = 1


_sessions: dict[tuple[str, int], _TokenSession] = {}


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(b"kubekms-hsm-pin\0" + pin.encode()).digest()


def _find_token(lib: Library, slot: int | None, token_label: str | None) -> pkcs11.Token:
    if slot is None and token_label is None:
        raise ConfigError("an HSM token must be chosen by slot id or by token label")
    if slot is None:
        try:
            return lib.get_token(token_label=token_label)
        except p11.NoSuchToken:
            raise ConfigError(f"HSM token '{token_label}' not found") from None
        except p11.MultipleTokensReturned:
            raise ConfigError(f"more than one HSM token is labelled '{token_label}'") from None
    for candidate in lib.get_slots(token_present=True):
        if candidate.slot_id == slot:
            token = candidate.get_token()
            if token_label is not None and token.label != token_label:
                raise ConfigError(f"HSM slot {slot} holds token '{token.label}', not '{token_label}'")
            return token
    raise ConfigError(f"HSM slot {slot} not found or has no token")


def _acquire(lib_path: str, pin: str, slot: int | None, token_label: str | None) -> _TokenSession:
    """Find the token and return its shared logged-in session (logging in on first use)."""
    if not os.path.isfile(lib_path):
        raise ConfigError(f"PKCS#11 library '{lib_path}' does not exist")
    try:
        lib = pkcs11.lib(lib_path)
        token = _find_token(lib, slot, token_label)
        shared = _sessions.get((lib_path, token.slot.slot_id))
        if shared is not None:
            if not hmac.compare_digest(shared.pin_digest, _pin_digest(pin)):
                raise ConfigError(
                    f"HSM token '{token.label}' is already logged in by this process with another PIN"
                )
            shared.users += 1
            return shared
        try:
            session = token.open(user_pin=pin)
        except _PIN_ERRORS as exc:
            raise ConfigError(
                f"HSM login to token '{token.label}' failed ({type(exc).__name__}): check the PIN"
            ) from None
        shared = _TokenSession(lib_path, token, session, _pin_digest(pin))
        _sessions[(lib_path, token.slot.slot_id)] = shared
        return shared
    except p11.PKCS11Error as exc:
        _finalize_if_unused(lib_path)
        raise Unavailable(f"HSM unavailable: {_reason(exc)}") from None
    except ConfigError:
        _finalize_if_unused(lib_path)
        raise


def _release(shared: _TokenSession) -> None:
    shared.users -= 1
    if shared.users > 0:
        return
    _sessions.pop((shared.lib_path, shared.token.slot.slot_id), None)
    # A failed close means the session is already gone; finalising below cleans up what is left.
    with contextlib.suppress(p11.PKCS11Error):
        shared.session.close()
    _finalize_if_unused(shared.lib_path)


def _finalize_if_unused(lib_path: str) -> None:
    if any(s.lib_path == lib_path for s in _sessions.values()):
        return
    # Best effort: the next pkcs11.lib() call initialises the library again either way.
    with contextlib.suppress(p11.PKCS11Error):
        pkcs11.lib(lib_path).finalize()


def _find_key(shared: _TokenSession, key_label: str, create: bool) -> tuple[_Operation, _Operation]:
    """Find (or create) the AES-256 key and return its (encrypt, decrypt) operations."""

    def lookup() -> pkcs11.Key:
        return shared.session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=key_label)

    token = shared.token.label
    try:
        key = lookup()
    except p11.MultipleObjectsReturned:
        raise ConfigError(f"more than one HSM key is labelled '{key_label}' on token '{token}'") from None
    except p11.NoSuchKey:
        if not create:
            raise ConfigError(f"HSM key '{key_label}' not found on token '{token}'") from None
        # A short-lived R/W session (the token is already logged in) keeps the shared one read-only.
        with shared.token.open(rw=True) as rw:
            rw.generate_key(
                KeyType.AES, 256, label=key_label, store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False, Attribute.WRAP: False, Attribute.UNWRAP: False,
                },
            )  # fmt: skip
        key = lookup()
    if not isinstance(key, EncryptMixin) or not isinstance(key, DecryptMixin) or key.key_length != 256:
        raise ConfigError(f"HSM key '{key_label}' on token '{token}' is not an AES-256 key")
    if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
        raise ConfigError(f"HSM key '{key_label}' on token '{token}' is extractable; refusing to use it")
    return key.encrypt, key.decrypt


def _gcm(operation: _Operation, data: bytes, nonce: bytes, aad: bytes) -> bytes:
    out = operation(data, mechanism=Mechanism.AES_GCM, mechanism_param=pkcs11.GCMParams(nonce, aad, 128))
    if not isinstance(out, bytes):  # only chunked (iterator) input yields an iterator
        raise TypeError("PKCS#11 GCM returned a stream for a single buffer")
    return out


class Pkcs11Sealer:
    """AES-256-GCM sealing under a non-extractable key on a PKCS#11 token. Thread-safe."""

    def __init__(
        self,
        lib_path: str,
        pin: str,
        key_label: str,
        *,
        slot: int | None = None,
        token_label: str | None = None,
        create_key: bool = False,
    ) -> None:
        with _LOCK:
            shared = _acquire(lib_path, pin, slot, token_label)
            try:
                self._encrypt, self._decrypt = _find_key(shared, key_label, create_key)
                kcv = _gcm(self._encrypt, _KCV_PLAINTEXT, _KCV_NONCE, b"")
            except p11.PKCS11Error as exc:
                _release(shared)
                raise Unavailable(f"HSM unavailable: {_reason(exc)}") from None
            except BaseException:
                _release(shared)
                raise
        self._shared: _TokenSession | None = shared
        self._kek_id = hashlib.sha256(kcv).digest()[:8].hex()
        self.key_label = key_label
        self.token_label = shared.token.label

    @property
    def kek_id(self) -> str:
        return self._kek_id

    @property
    def backend(self) -> str:
        return "pkcs11"

    def _check_open(self) -> None:
        if self._shared is None:
            raise Unavailable("HSM unavailable: the sealer is closed")

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(blob_format.NONCE_SIZE)
        with _LOCK:
            self._check_open()
            try:
                ct = _gcm(self._encrypt, plaintext, nonce, aad)
            except p11.PKCS11Error as exc:
                raise Unavailable(f"HSM unavailable: {_reason(exc)}") from None
        return blob_format.pack(self._kek_id, nonce, ct)

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        kek_id, nonce, ct = blob_format.parse(blob)
        blob_format.check_kek_id(self._kek_id, kek_id)
        with _LOCK:
            self._check_open()
            try:
                return _gcm(self._decrypt, ct, nonce, aad)
            except _DEVICE_ERRORS as exc:
                raise Unavailable(f"HSM unavailable: {_reason(exc)}") from None
            except p11.PKCS11Error:
                # SoftHSM reports a failed tag check as CKR_GENERAL_ERROR, others as
                # CKR_ENCRYPTED_DATA_INVALID: all mean "does not authenticate".
                raise UnsealError(
                    f"sealed blob does not authenticate under kek_id {self._kek_id} with this AAD"
                ) from None

    def close(self) -> None:
        """Release this sealer's share of the token session (logout on the last one). Idempotent."""
        with _LOCK:
            shared, self._shared = self._shared, None
            if shared is not None:
                _release(shared)

    def __enter__(self) -> Pkcs11Sealer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Sealer(token={self.token_label!r}, key={self.key_label!r}, kek_id={self._kek_id!r})"
