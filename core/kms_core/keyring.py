"""A key's versions, loaded once into ready-to-use primitive objects.

A `Keyring` holds every stored version of one key at or above its decryption bound; each
version's primitives are built on first use (an old RSA version costs nothing until it is
asked for). Every primitive is stateless per call, so one instance may be cached by the key's
`generation` (version and bounds) and shared between threads and the event loop; building a
version twice in a race is harmless.

A `derived` key (Transit's, kms_core.derivation) never uses its versions' own keys: each request's
`context` selects the AEAD key (AES-GCM, ChaCha20-Poly1305) or the Ed25519 signing key, and an
operation without one is refused with `derivation.MISSING_CONTEXT`.

Operations take an optional `version`: without one, encryption, signing and MAC use the current
version, and decryption and verification try the allowed versions (the one a ciphertext names
first, then newest first). Versions below `min_decryption_version` are never tried, and a
ciphertext naming one is refused with `VersionDisallowed` (a clear 400: the version is public).

Security property: it is the only holder of unsealed material on the hot path; it
never logs or returns material except through `export_private` (which the service gates on
`isExportable`), and every decryption failure is the one opaque `DecryptionFailed`.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kms_core import ciphertext, derivation, material
from kms_core.algorithms import Primitive, spec_of
from kms_core.errors import BadRequest, DecryptionFailed
from kms_core.gcmusage import EncryptionCount
from kms_core.lifecycle import VersionDisallowed
from kms_core.model import Algorithm, SigningAlgorithm
from kms_core.primitives import keys
from kms_core.primitives.aead import Aead
from kms_core.primitives.agreement import Ecdh
from kms_core.primitives.mac import Hmac
from kms_core.primitives.rsa_oaep import RsaOaep
from kms_core.primitives.signing import Signer, check_arguments, signer_for
from kms_core.signing_options import SigningOptions

# The HKDF info that derives a non-HMAC key version's HMAC key from its material (`hmac_key`).
# Fixed: changing it changes every such key's HMACs.
HMAC_KEY_LABEL: Final = b"KubeKMS Transit HMAC key v1"
HMAC_KEY_BYTES: Final = 32  # OpenBao's per-version HMAC keys are 32 bytes


def version_hmac_key(algorithm: Algorithm, raw: bytes) -> bytes:
    """The HMAC key of a version whose stored material is `raw` (see `Keyring.hmac_key`)."""
    if spec_of(algorithm).primitive is Primitive.HMAC:
        return raw
    return derivation.derive(raw, HMAC_KEY_LABEL, HMAC_KEY_BYTES)


class _Generation:
    """The primitives of one version, built once on first use."""

    __slots__ = ("aead", "ecdh", "hmac", "oaep", "private", "signer")

    def __init__(self, algorithm: Algorithm, raw: bytes) -> None:
        self.aead: Aead | None = None
        self.hmac: Hmac | None = None
        self.private: keys.PrivateKey | None = None
        self.signer: Signer | None = None
        self.oaep: RsaOaep | None = None
        self.ecdh: Ecdh | None = None
        primitive = spec_of(algorithm).primitive
        if primitive is Primitive.AES_GCM:
            self.aead = Aead(raw)
        elif primitive is Primitive.CHACHA20:
            self.aead = Aead(raw, chacha=True)
        elif primitive is Primitive.HMAC:
            self.hmac = Hmac(algorithm, raw)
        else:
            # The material came out of an authenticated seal: the slow RSA consistency check is
            # skipped.
            private = keys.load_private_key(algorithm, raw, trusted=True)
            self.private = private
            self.signer = signer_for(private)
            if isinstance(private, rsa.RSAPrivateKey):
                self.oaep = RsaOaep(private)
            if isinstance(private, ec.EllipticCurvePrivateKey):
                self.ecdh = Ecdh(private)


def _no_aad(aad: bytes | None) -> None:
    if aad:
        raise BadRequest("associated data is supported by AEAD keys only (AES-GCM, ChaCha20-Poly1305)")


class Keyring:
    """Encrypt/decrypt, sign/verify, MAC and key agreement with one key's versions."""

    __slots__ = (
        "_algorithm",
        "_built",
        "_chacha",
        "_convergent",
        "_current_version",
        "_derived",
        "_materials",
        "_min_decryption",
        "_primary",
        "_slow",
        "_try_order",
        "_usage",
    )

    def __init__(
        self,
        algorithm: Algorithm,
        materials: Mapping[int, bytes],
        current_version: int,
        *,
        usage: EncryptionCount | None = None,
        min_decryption_version: int = 1,
        derived: bool = False,
        convergent: bool = False,
    ) -> None:
        """`materials` maps version -> unsealed material; versions below `min_decryption_version`
        are dropped at once. `usage` counts the AES-GCM encryptions of the current version
        (`kms_core.gcmusage`)."""
        if current_version not in materials:
            raise ValueError(f"current version {current_version} has no material")
        self._algorithm = algorithm
        self._current_version = current_version
        self._min_decryption = max(1, min(min_decryption_version, current_version))
        self._materials: Mapping[int, bytes] = MappingProxyType(
            {v: m for v, m in materials.items() if v >= self._min_decryption}
        )
        self._usage = usage
        self._slow = spec_of(algorithm).slow
        # Transit's derived keys (kms_core.derivation): AEAD and Ed25519 keys; the key is per
        # context.
        self._derived = derived
        self._convergent = convergent
        self._chacha = spec_of(algorithm).primitive is Primitive.CHACHA20
        self._built: dict[int, _Generation] = {}
        # Built now: a bad current material fails the load, not a later request.
        self._primary = self._generation(current_version)
        self._try_order = tuple(sorted(self._materials, reverse=True))

    def _generation(self, version: int) -> _Generation:
        built = self._built.get(version)
        if built is None:
            built = _Generation(self._algorithm, self._materials[version])
            self._built[version] = built
        return built

    def _version(self, version: int | None) -> _Generation:
        """The primitives of `version` (None = current) for encrypting, signing, MAC-ing."""
        if version is None or version == self._current_version:
            return self._primary
        if version < self._min_decryption:
            raise VersionDisallowed()
        if version not in self._materials:
            raise BadRequest(f"key version {version} does not exist")
        return self._generation(version)

    def _candidates(self, version: int | None) -> tuple[int, ...]:
        """The versions to try for decrypting or verifying: `version` alone when given, else all
        allowed ones, newest first."""
        if version is None:
            return self._try_order
        if version < self._min_decryption:
            raise VersionDisallowed()
        if version not in self._materials:
            raise DecryptionFailed()  # a version that does not exist authenticates nothing
        return (version,)

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    @property
    def current_version(self) -> int:
        return self._current_version

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions this keyring may use, newest first."""
        return self._try_order

    def __repr__(self) -> str:  # never show material
        return f"Keyring(algorithm={self.algorithm.value}, current_version={self.current_version})"

    @property
    def is_slow(self) -> bool:
        """True when private-key operations take over ~1 ms (RSA, ML-DSA): run them in an executor."""
        return self._slow

    def _unsupported(self, operation: str) -> TypeError:
        # A programming error: the service checks key usage before calling the keyring.
        return TypeError(f"{self.algorithm.value} keys do not support {operation}")

    def _derived_aead(
        self, version: int, context: bytes | None, plaintext: bytes | None
    ) -> tuple[Aead, bytes | None]:
        """The AEAD of `context` under `version` and, for convergent encryption when encrypting
        (`plaintext` given), the nonce derived from the plaintext."""
        raw = self._materials[version]
        size = len(raw)
        if self._convergent and plaintext is not None:
            okm = derivation.derive(raw, context, size + derivation.CONVERGENT_HMAC_BYTES)
            return Aead(okm[:size], chacha=self._chacha), derivation.convergent_nonce(okm[size:], plaintext)
        return Aead(derivation.derive(raw, context, size), chacha=self._chacha), None

    def encrypt(
        self, plaintext: bytes, version: int | None = None, aad: bytes | None = None,
        context: bytes | None = None,
    ) -> bytes:
        """The wire ciphertext (spec §5.1) under `version` (default: current): AES-GCM,
        ChaCha20-Poly1305 or RSA-OAEP, with the v01/v02 trailer naming the version. `aad`
        (Transit's associated_data) is authenticated by the AEADs and refused for RSA; `context`
        selects a derived key's encryption key (required for derived keys, else ignored)."""
        gen = self._version(version)
        used = self._current_version if version is None else version
        if gen.aead is not None:
            usage = self._usage
            if usage is not None and used == self._current_version:
                usage.add()  # an int increment: random nonces wear out after 2^32 encryptions
            if self._derived:
                aead, nonce = self._derived_aead(used, context, plaintext)
                return ciphertext.pack(aead.encrypt(plaintext, aad, nonce), used)
            return ciphertext.pack(gen.aead.encrypt(plaintext, aad), used)
        if gen.oaep is not None:
            _no_aad(aad)
            return ciphertext.pack(gen.oaep.encrypt(plaintext), used)
        raise self._unsupported("encryption")

    def decrypt(self, blob: bytes, aad: bytes | None = None, context: bytes | None = None) -> bytes:
        """The plaintext; DecryptionFailed if no allowed version authenticates the blob (one
        opaque error), VersionDisallowed if the blob names a version below the decryption bound."""
        raw, embedded = ciphertext.unpack(blob)
        if embedded is None and blob.endswith(ciphertext.V01):
            embedded = 1  # "v01" is what version 1 produces (spec §5.1), so it names version 1
        # Any other trailer names no version: its failure stays the one opaque error, even once
        # version 1 is below the decryption bound (garbage must not read as "too old").
        return self.decrypt_raw(raw, embedded, hint_only=True, aad=aad, context=context)

    def decrypt_raw(
        self, raw: bytes, version: int | None, *, hint_only: bool = False, aad: bytes | None = None,
        context: bytes | None = None,
    ) -> bytes:
        """Decrypt `raw` (no trailer) with `version`, or with every allowed version when None.

        `hint_only`: the version came from the unauthenticated v01/v02 trailer, so it is tried
        first but the others are tried too (a tampered trailer changes only the order)."""
        if self._primary.aead is None and self._primary.oaep is None:
            raise self._unsupported("decryption")
        if self._primary.aead is None:
            _no_aad(aad)
        elif self._derived and not context:
            raise BadRequest(derivation.MISSING_CONTEXT)
        order = self._candidates(None if hint_only else version)
        if hint_only and version is not None:
            # Only a real version (>= 1) is "too old"; a trailer naming 0 names nothing and
            # gets the opaque refusal like any other tampering.
            if 1 <= version < self._min_decryption:
                raise VersionDisallowed()
            if version in self._materials:
                order = (version, *(v for v in order if v != version))
        for candidate in order:
            gen = self._generation(candidate)
            try:
                if gen.aead is not None and self._derived:
                    return self._derived_aead(candidate, context, None)[0].decrypt(raw, aad)
                if gen.aead is not None:
                    return gen.aead.decrypt(raw, aad)
                if gen.oaep is not None:
                    return gen.oaep.decrypt(raw)
            except DecryptionFailed:
                continue
        raise DecryptionFailed()

    def _signer(self, gen: _Generation) -> Signer:
        if gen.signer is None:
            raise self._unsupported("signing")
        return gen.signer

    def _derived_private(self, gen: _Generation, context: bytes | None) -> ed25519.Ed25519PrivateKey:
        """The Ed25519 key `context` selects under `gen` (a derived key's version)."""
        if not isinstance(gen.private, ed25519.Ed25519PrivateKey):
            raise self._unsupported("derived signing")  # the service creates no other derived signer
        return derivation.derive_ed25519(gen.private, context)

    def _signer_of(self, gen: _Generation, context: bytes | None) -> Signer:
        """`gen`'s signer, or for a derived key the signer of the key `context` selects."""
        signer = self._signer(gen)
        if not self._derived:
            return signer
        return signer_for(self._derived_private(gen, context))

    def sign(
        self, signing: SigningAlgorithm | SigningOptions, data: bytes, is_digest: bool = False,
        version: int | None = None, context: bytes | None = None,
    ) -> bytes:
        """A signature over `data` (or over the digest `data` when `is_digest`), spec §2.11.

        `signing` is Infisical's algorithm (checked against the key with Infisical's texts;
        `is_digest` says whether `data` is a digest) or dialect-neutral `SigningOptions`
        (which carry `prehashed` themselves; the dialect checked them). `context` selects a
        derived key's signing key (required for derived keys, else ignored)."""
        gen = self._version(version)
        self._signer(gen)
        if isinstance(signing, SigningAlgorithm):
            check_arguments(self.algorithm, signing, is_digest)
        return self._signer_of(gen, context).sign(signing, data, is_digest)

    def verify(
        self, signing: SigningAlgorithm | SigningOptions, data: bytes, signature: bytes,
        is_digest: bool = False, version: int | None = None, context: bytes | None = None,
    ) -> bool:
        """Whether `signature` is valid under `version` (None: any allowed version); argument
        errors raise BadRequest, bad signatures give False. `context`: as `sign`."""
        self._signer(self._primary)
        if isinstance(signing, SigningAlgorithm):
            check_arguments(self.algorithm, signing, is_digest)
        try:
            candidates = self._candidates(version)
        except DecryptionFailed:
            return False
        if self._derived and not context:
            raise BadRequest(derivation.MISSING_CONTEXT)
        return any(
            self._signer_of(self._generation(v), context).verify(signing, data, signature, is_digest)
            for v in candidates
        )

    def hmac_key(self, version: int | None = None) -> bytes:
        """`version`'s HMAC key (default: current): an HMAC key's own material; for every other
        key a 32-byte key HKDF-SHA256(material, salt none, info = `HMAC_KEY_LABEL`), so each
        version has its own HMAC key, as each OpenBao key version does, while the material
        itself never keys an HMAC. Callers gate any export of it as a private key's."""
        self._version(version)  # the bounds: below min_decryption_version or missing refused
        used = self._current_version if version is None else version
        return version_hmac_key(self._algorithm, self._materials[used])

    def generate_mac(self, data: bytes, version: int | None = None, hash_name: str | None = None) -> bytes:
        """The raw HMAC of `data` under `version` (default: current). `hash_name` (hashlib's)
        picks another hash than an HMAC key's own, with the same key bytes, and lets any key
        MAC with its version's `hmac_key` (the Transit dialect)."""
        if hash_name is not None:
            return hmac.digest(self.hmac_key(version), data, hash_name)
        mac = self._version(version).hmac
        if mac is None:
            raise self._unsupported("MAC generation")
        return mac.generate(data)

    def verify_mac(
        self, data: bytes, mac: bytes, version: int | None = None, hash_name: str | None = None
    ) -> bool:
        """Whether `mac` is the HMAC of `data` under `version` (None: any allowed version);
        constant-time per version; a wrong length is False. `hash_name`: as `generate_mac`."""
        if hash_name is None and self._primary.hmac is None:
            raise self._unsupported("MAC verification")
        try:
            candidates = self._candidates(version)
        except DecryptionFailed:
            return False
        if hash_name is not None:
            results = [
                hmac.compare_digest(hmac.digest(self.hmac_key(v), data, hash_name), mac) for v in candidates
            ]
        else:
            results = [self._hmac_of(v).verify(data, mac) for v in candidates]  # no early exit
        return any(results)

    def _hmac_of(self, version: int) -> Hmac:
        mac = self._generation(version).hmac
        if mac is None:
            raise self._unsupported("MAC verification")
        return mac

    def derive_shared_secret(self, peer_public_key: bytes, version: int | None = None) -> bytes:
        """ECDH with a peer's DER SPKI public key: the raw x-coordinate (spec §2.18)."""
        ecdh = self._version(version).ecdh
        if ecdh is None:
            raise self._unsupported("key agreement")
        return ecdh.derive(peer_public_key)

    def public_key(self, version: int | None = None, context: bytes | None = None) -> bytes:
        """DER SubjectPublicKeyInfo of `version` (default: current). A derived key's public key
        for `context` when one is given; without one, the version's own key pair's (which
        verifies nothing: OpenBao's `export/public-key` of a derived key returns it too)."""
        gen = self._version(version)
        private = gen.private
        if private is None:
            raise self._unsupported("public keys")
        if self._derived and context:
            return keys.spki_der(self._derived_private(gen, context))
        return keys.spki_der(private)

    def export_private(self, version: int | None = None) -> bytes:
        """`version`'s material (default: current) in the export format of spec §2.13."""
        self._version(version)
        used = self._current_version if version is None else version
        return material.export_private(self.algorithm, self._materials[used])
