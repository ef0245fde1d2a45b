"""Transit's BYOK wrapping key: one RSA-4096 key pair per data directory, and the unwrapping of
`keys/:name/import` ciphertexts (OpenBao's format).

Format (OpenBao 2.7): `ciphertext` = base64( RSA-OAEP(wrapping public key, ephemeral AES key,
hash = `hash_function`, MGF1 with the same hash, no label) ‖ AES-KWP(ephemeral key, material) ),
RFC 5649 key wrap with padding.

Persistence: as OpenBao's (kept in its storage), the wrapping key survives a restart: it is made
on first use, sealed by the data directory's sealer (root key or HSM, like key material) with
its own AAD, and written once to `<data_dir>/transit-wrapping-key.sealed` (mode 0600, created
exclusively, so two processes racing on one data directory end up with the same key). Kubernetes
mode has no wrapping key: the operator is the only writer of key material there.

Security property: the private half exists on disk only sealed and in memory only inside this
process's `WrappingKey`; an unwrapping failure says which step failed, never any bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Final

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from kms_api.transit.envelope import VaultError
from kms_core.sealing.base import Sealer

__all__ = ["FILE_NAME", "HASH_FUNCTIONS", "WRAPPING", "WrappingKey", "WrappingKeys", "unwrap"]

FILE_NAME: Final = "transit-wrapping-key.sealed"
_AAD: Final = b"kubekms/v1|transit-wrapping-key"
_BITS: Final = 4096
# OpenBao's `hash_function` names (OAEP hash and MGF1 hash).
HASH_FUNCTIONS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class WrappingKey:
    """The unsealed wrapping key pair of one data directory."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self._private = private
        self.public_pem: Final = (
            private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def unwrap(self, blob: bytes, hash_function: str) -> bytes:
        """The material inside an import ciphertext; VaultError (OpenBao's texts) otherwise."""
        size = self._private.key_size // 8
        if len(blob) < size:
            raise VaultError(400, "provided ciphertext is too short")
        algorithm = HASH_FUNCTIONS[hash_function]()
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
        try:
            ephemeral = self._private.decrypt(blob[:size], oaep)
        except ValueError:
            raise VaultError(400, "crypto/rsa: decryption error") from None
        wrapped = blob[size:]
        if len(wrapped) < 24:  # OpenBao's KWP (Tink's) wraps keys of 16 bytes or more
            raise VaultError(400, "kwp: wrapped key size too small")
        try:
            return aes_key_unwrap_with_padding(ephemeral, wrapped)
        except (InvalidUnwrap, ValueError):
            raise VaultError(400, "kwp: failed to unwrap key") from None


def _load_or_create(data_dir: Path, sealer: Sealer) -> WrappingKey:
    """The data directory's wrapping key: read and unsealed, or made, sealed and written once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE_NAME
    if not path.exists():
        private = rsa.generate_private_key(public_exponent=65537, key_size=_BITS)
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        sealed = sealer.seal(der, _AAD)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(sealed)
                out.flush()
                os.fsync(out.fileno())
            # link() fails if another process made the key first: then its key is the one.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    der = sealer.unseal(path.read_bytes(), _AAD)
    private_key = serialization.load_der_private_key(der, password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError("the sealed wrapping key is not an RSA key")
    return WrappingKey(private_key)


class WrappingKeys:
    """The app's wrapping key, made or unsealed once (off the event loop: RSA-4096 generation
    takes about a second) and then kept in memory."""

    def __init__(self) -> None:
        self._key: WrappingKey | None = None
        self._lock = asyncio.Lock()

    async def get(self, data_dir: Path, sealer: Sealer) -> WrappingKey:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    self._key = await asyncio.to_thread(_load_or_create, data_dir, sealer)
        return self._key


WRAPPING: Final = web.AppKey("transit_wrapping_key", WrappingKeys)


def unwrap(key: WrappingKey, blob: bytes, hash_function: str) -> bytes:
    """`WrappingKey.unwrap` as a plain function (the core runs it after the permission check)."""
    return key.unwrap(blob, hash_function)
