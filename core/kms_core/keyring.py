"""A key's versions, loaded once into ready-to-use primitive objects.

A `Keyring` is immutable after construction and every primitive it holds is stateless per call,
so one instance may be cached by (key_id, current_version) and shared between threads and the
event loop. Security property: it is the only holder of unsealed material on the hot path; it
never logs or returns material except through `export_private` (which the service gates on
`isExportable`), and every decryption failure is the one opaque `DecryptionFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kms_core import ciphertext, material
from kms_core.algorithms import Primitive, spec_of
from kms_core.errors import DecryptionFailed
from kms_core.gcmusage import EncryptionCount
from kms_core.model import Algorithm, SigningAlgorithm
from kms_core.primitives import keys
from kms_core.primitives.aead import Aead
from kms_core.primitives.agreement import Ecdh
from kms_core.primitives.mac import Hmac
from kms_core.primitives.rsa_oaep import RsaOaep
from kms_core.primitives.signing import Signer, check_arguments, signer_for


class Keyring:
    """Encrypt/decrypt, sign/verify, MAC and key agreement with one key's material."""

    __slots__ = (
        "_aead",
        "_algorithm",
        "_current_version",
        "_decrypt_order",
        "_ecdh",
        "_hmac",
        "_material",
        "_oaep",
        "_private",
        "_signer",
        "_slow",
        "_usage",
    )

    def __init__(
        self,
        algorithm: Algorithm,
        materials: Mapping[int, bytes],
        current_version: int,
        *,
        usage: EncryptionCount | None = None,
    ) -> None:
        """`usage` counts the AES-GCM encryptions of the current version (`kms_core.gcmusage`)."""
        if current_version not in materials:
            raise ValueError(f"current version {current_version} has no material")
        self._algorithm = algorithm
        self._current_version = current_version
        self._material = materials[current_version]
        self._usage = usage
        self._aead: Mapping[int, Aead] = MappingProxyType({})
        self._decrypt_order: tuple[int, ...] = ()
        self._hmac: Hmac | None = None
        self._private: keys.PrivateKey | None = None
        self._signer: Signer | None = None
        self._oaep: RsaOaep | None = None
        self._ecdh: Ecdh | None = None
        spec = spec_of(algorithm)
        self._slow = spec.slow
        if spec.primitive is Primitive.AES_GCM:
            # Every generation stays loaded: old ciphertexts must keep decrypting after rotation.
            self._aead = MappingProxyType({v: Aead(m) for v, m in materials.items()})
            older = sorted((v for v in materials if v != current_version), reverse=True)
            self._decrypt_order = (current_version, *older)
        elif spec.primitive is Primitive.HMAC:
            self._hmac = Hmac(algorithm, self._material)
        else:
            # Asymmetric keys never rotate: only the current generation is used. The material
            # came out of an authenticated seal, so the slow RSA consistency check is skipped.
            private = keys.load_private_key(algorithm, self._material, trusted=True)
            self._private = private
            self._signer = signer_for(private)
            if isinstance(private, rsa.RSAPrivateKey):
                self._oaep = RsaOaep(private)
            if isinstance(private, ec.EllipticCurvePrivateKey):
                self._ecdh = Ecdh(private)

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def current_version(self) -> int:
        return self._current_version

    def __repr__(self) -> str:  # never show material
        return f"Keyring(algorithm={self.algorithm.value}, current_version={self.current_version})"

    @property
    def is_slow(self) -> bool:
        """True when private-key operations take over ~1 ms (RSA, ML-DSA): run them in an executor."""
        return self._slow

    def _unsupported(self, operation: str) -> TypeError:
        # A programming error: the service checks key usage before calling the keyring.
        return TypeError(f"{self.algorithm.value} keys do not support {operation}")

    def encrypt(self, plaintext: bytes) -> bytes:
        """The wire ciphertext (spec §5.1): AES-GCM with the v01/v02 trailer, or RSA-OAEP + "v01"."""
        if self._aead:
            usage = self._usage
            if usage is not None:
                usage.add()  # an int increment: random nonces wear out after 2^32 encryptions
            return ciphertext.pack(self._aead[self.current_version].encrypt(plaintext), self.current_version)
        if self._oaep is not None:
            return ciphertext.pack(self._oaep.encrypt(plaintext), 1)
        raise self._unsupported("encryption")

    def decrypt(self, blob: bytes) -> bytes:
        """The plaintext; DecryptionFailed if no version authenticates the blob (one opaque error)."""
        raw, embedded = ciphertext.unpack(blob)
        if self._oaep is not None:
            return self._oaep.decrypt(raw)
        if not self._aead:
            raise self._unsupported("decryption")
        order = self._decrypt_order
        if embedded is not None and embedded in self._aead and embedded != self.current_version:
            order = (embedded, *(v for v in order if v != embedded))
        for version in order:
            try:
                return self._aead[version].decrypt(raw)
            except DecryptionFailed:
                continue
        raise DecryptionFailed()

    def _require_signer(self) -> Signer:
        if self._signer is None:
            raise self._unsupported("signing")
        return self._signer

    def sign(self, signing_algorithm: SigningAlgorithm, data: bytes, is_digest: bool) -> bytes:
        """A signature over `data` (or over the digest `data` when `is_digest`), spec §2.11."""
        signer = self._require_signer()
        check_arguments(self.algorithm, signing_algorithm, is_digest)
        return signer.sign(signing_algorithm, data, is_digest)

    def verify(
        self, signing_algorithm: SigningAlgorithm, data: bytes, signature: bytes, is_digest: bool
    ) -> bool:
        """Whether `signature` is valid; argument errors raise BadRequest, bad signatures give False."""
        signer = self._require_signer()
        check_arguments(self.algorithm, signing_algorithm, is_digest)
        return signer.verify(signing_algorithm, data, signature, is_digest)

    def generate_mac(self, data: bytes) -> bytes:
        """The raw HMAC of `data`."""
        if self._hmac is None:
            raise self._unsupported("MAC generation")
        return self._hmac.generate(data)

    def verify_mac(self, data: bytes, mac: bytes) -> bool:
        """Whether `mac` is the HMAC of `data` (constant-time; a wrong length is False)."""
        if self._hmac is None:
            raise self._unsupported("MAC verification")
        return self._hmac.verify(data, mac)

    def derive_shared_secret(self, peer_public_key: bytes) -> bytes:
        """ECDH with a peer's DER SPKI public key: the raw x-coordinate (spec §2.18)."""
        if self._ecdh is None:
            raise self._unsupported("key agreement")
        return self._ecdh.derive(peer_public_key)

    def public_key(self) -> bytes:
        """DER SubjectPublicKeyInfo of the current version."""
        if self._private is None:
            raise self._unsupported("public keys")
        return keys.spki_der(self._private)

    def export_private(self) -> bytes:
        """The current version's material in the export format of spec §2.13."""
        return material.export_private(self.algorithm, self._material)
