"""How to sign: the dialect-neutral options a `Keyring` signs and verifies with.

Each dialect maps its own words onto one `SigningOptions`: Infisical's fixed `SigningAlgorithm`
list (`from_algorithm`: PSS with a hash-length salt, PKCS#1 v1.5, ECDSA, Ed25519 or Ed25519ph)
and Transit's `hash_algorithm`, `prehashed`, `signature_algorithm` and `salt_length`
(kms_api.transit.signing). The primitives (kms_core.primitives.signing) only read these fields.

| field      | meaning                                                                         |
| hash       | hashlib's name of the message hash (sha1, sha224..sha512, sha3_224..sha3_512),  |
|            | or `none`: the input is signed as given (RSA PKCS#1 v1.5 without DigestInfo,    |
|            | ECDSA over the input; prehashed only)                                          |
| prehashed  | the input is the digest (ECDSA: any length, truncated or left-padded to the     |
|            | curve's size as Go and OpenSSL do); Ed25519: RFC 8032 Ed25519ph                 |
| pss        | RSA: PSS (True) or PKCS#1 v1.5                                                 |
| salt       | RSA PSS salt: SALT_AUTO (sign with the largest salt, verify any: Go's           |
|            | PSSSaltLengthAuto, OpenBao's default), SALT_HASH (the digest's length, on both  |
|            | sides: Infisical's), or a byte count                                            |

Security property: pure data; no key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kms_core.algorithms import SIGNING_HASH
from kms_core.model import SigningAlgorithm

__all__ = ["HASH_NONE", "SALT_AUTO", "SALT_HASH", "SIGNING_HASHES", "SigningOptions", "from_algorithm"]

HASH_NONE: Final = "none"
SALT_AUTO: Final = -2  # internal markers, never a byte count
SALT_HASH: Final = -1
# The message hashes a key may sign with (hashlib's names), besides HASH_NONE.
SIGNING_HASHES: Final = frozenset(
    {"sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512"}
)


@dataclass(frozen=True, slots=True)
class SigningOptions:
    """One signing request's choices (see the module table); checked at construction."""

    hash: str = "sha256"
    prehashed: bool = False
    pss: bool = True
    salt: int = SALT_AUTO

    def __post_init__(self) -> None:
        if self.hash != HASH_NONE and self.hash not in SIGNING_HASHES:
            raise ValueError(f"unknown signing hash {self.hash!r}")
        if self.salt < SALT_AUTO:
            raise ValueError(f"invalid salt length {self.salt}")


def from_algorithm(algorithm: SigningAlgorithm, is_digest: bool) -> SigningOptions:
    """Infisical's signing algorithm as options: PSS keeps its hash-length salt on both sides
    (what Infisical signs and verifies with), Ed25519ph is Ed25519 with a digest."""
    return SigningOptions(
        hash=SIGNING_HASH[algorithm],
        prehashed=is_digest or algorithm is SigningAlgorithm.ED25519_PH_SHA_512,
        pss=algorithm.value.startswith("RSASSA_PSS"),
        salt=SALT_HASH,
    )
