"""The `Sealer` protocol and the AAD that binds a sealed blob to its place.

Security property: every sealed blob is authenticated together with `kubekms/v1|keyId|version|
algorithm`, so a blob copied to another key, version or algorithm fails to unseal.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kms_core.model import Algorithm


@runtime_checkable
class Sealer(Protocol):
    """Wraps and unwraps key material under a key-encryption key (KEK) the process never exports.

    `kek_id` identifies the KEK (hex); stores record it and refuse to open under another one.
    Implementations are thread-safe (PKCS#11 ones serialise all token calls).
    """

    @property
    def kek_id(self) -> str: ...

    @property
    def backend(self) -> str:
        """A short name for metrics and logs: "rootkey" or "pkcs11"."""
        ...

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        """Return the plaintext; raise `kms_core.sealing.base.UnsealError` if it does not authenticate."""
        ...

    def close(self) -> None:
        """Release the KEK (wipe a root key, log out of the token); idempotent, called at shutdown."""
        ...


class UnsealError(Exception):
    """A sealed blob is malformed, was sealed under another KEK, or its AAD does not match."""


def material_aad(key_id: str, version: int, algorithm: Algorithm | str) -> bytes:
    """The associated data sealing a key's material: `kubekms/v1|<keyId>|<version>|<algorithm>`."""
    return f"kubekms/v1|{key_id}|{version}|{algorithm}".encode()
