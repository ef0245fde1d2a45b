"""A sealer whose key-encryption key is an AES-256 key inside an HSM, used through PKCS#11.

The key never leaves the token: it is created (only when asked) sensitive, non-extractable and
limited to encrypt/decrypt; an existing extractable key is refused. Sealing is CKM_AES_GCM with
our random 96-bit nonce, the caller's AAD and a 128-bit tag, in the shared `blob` layout.

Token sessions (one per token, shared, under one process-wide lock) live in `hsmsession`. After
a token fault the session reconnects with backoff; each sealer then looks its key up again and
checks that the key check value still matches `kek_id` before using it.

Security property: the PIN never appears in logs or errors (only its digest is kept, to refuse a
second sealer presenting another PIN to a logged-in token); `kek_id` is a key check value, so a
different key under the same label is detected.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import DecryptMixin, EncryptMixin

from kms_core.errors import ConfigError, Unavailable
from kms_core.sealing import blob as blob_format
from kms_core.sealing.base import UnsealError
from kms_core.sealing.hsmsession import DEVICE_ERRORS, LOCK, TokenSession, acquire, reason, release

# A bound encrypt/decrypt method of a key on the token.
_Operation = Callable[..., bytes | Iterator[bytes]]

# Kept under its historical name: tests and callers serialise token access with it.
_LOCK = LOCK
_TokenSession = TokenSession

# Key check value input: a GCM encryption of a constant under a nonce our random nonces never hit
# in practice (2^-96); only a digest of its output is published.
_KCV_NONCE = bytes(12)
_KCV_PLAINTEXT = b"kubekms key check value v1"


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
    """AES-256-GCM sealing under a non-extractable key on a PKCS#11 token. Thread-safe.

    A token fault (session closed, token removed) makes calls raise `Unavailable` with a retry
    delay; the shared session reconnects with backoff, and this sealer re-finds its key and
    refuses it unless its key check value still equals `kek_id` (another key under the same
    label is never used)."""

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
            shared = acquire(lib_path, pin, slot, token_label)
            try:
                self._encrypt, self._decrypt = _find_key(shared, key_label, create_key)
                kcv = _gcm(self._encrypt, _KCV_PLAINTEXT, _KCV_NONCE, b"")
            except p11.PKCS11Error as exc:
                release(shared)
                raise Unavailable(f"HSM unavailable: {reason(exc)}") from None
            except BaseException:
                release(shared)
                raise
        self._shared: _TokenSession | None = shared
        self._generation = shared.generation
        self._kek_id = hashlib.sha256(kcv).digest()[:8].hex()
        self.key_label = key_label
        self.token_label = shared.token.label

    @property
    def kek_id(self) -> str:
        return self._kek_id

    @property
    def backend(self) -> str:
        return "pkcs11"

    def _ready(self) -> _TokenSession:
        """The live session, reconnected (and the key re-found and re-checked) if it was lost."""
        shared = self._shared
        if shared is None:
            raise Unavailable("HSM unavailable: the sealer is closed")
        shared.ensure()
        if self._generation != shared.generation:
            try:
                encrypt, decrypt = _find_key(shared, self.key_label, create=False)
                kcv = _gcm(encrypt, _KCV_PLAINTEXT, _KCV_NONCE, b"")
            except DEVICE_ERRORS as exc:
                raise shared.mark_broken(exc) from None
            except (p11.PKCS11Error, ConfigError) as exc:
                raise Unavailable(f"HSM unavailable: {reason(exc)}") from None
            if hashlib.sha256(kcv).digest()[:8].hex() != self._kek_id:
                raise Unavailable(f"HSM unavailable: key '{self.key_label}' is no longer the sealing key")
            self._encrypt, self._decrypt, self._generation = encrypt, decrypt, shared.generation
        return shared

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(blob_format.NONCE_SIZE)
        with _LOCK:
            shared = self._ready()
            try:
                ct = _gcm(self._encrypt, plaintext, nonce, aad)
            except DEVICE_ERRORS as exc:
                raise shared.mark_broken(exc) from None
            except p11.PKCS11Error as exc:
                raise Unavailable(f"HSM unavailable: {reason(exc)}") from None
        return blob_format.pack(self._kek_id, nonce, ct)

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        kek_id, nonce, ct = blob_format.parse(blob)
        blob_format.check_kek_id(self._kek_id, kek_id)
        with _LOCK:
            shared = self._ready()
            try:
                return _gcm(self._decrypt, ct, nonce, aad)
            except DEVICE_ERRORS as exc:
                raise shared.mark_broken(exc) from None
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
                release(shared)

    def __enter__(self) -> Pkcs11Sealer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Sealer(token={self.token_label!r}, key={self.key_label!r}, kek_id={self._kek_id!r})"
