"""OpenBao's plaintext key backup (`GET transit/backup/:name`, `POST transit/restore`), both ways.

A backup is base64 of the JSON OpenBao's `keysutil.KeyData` encodes to (Go's field order, a final
newline): `policy` (the key's settings and, under `keys`, the versions still allowed to decrypt)
and `archived_keys.keys` (every version not trimmed, at index `version - archive_min_version`;
index 0 is an empty entry when nothing was trimmed). Each version carries its material in
OpenBao's encoding:

| type                               | fields                                                    |
| aes128/256-gcm96, chacha20-poly1305 | `key`: base64 of the raw key                             |
| hmac                               | `key` and `hmac_key`: base64 of the raw key (`key_size`)  |
| ecdsa-p256/384/521                 | `ec_x`, `ec_y`, `ec_d` (JSON integers), `public_key` PEM  |
| ed25519                            | `key`: base64 of seed ‖ public key, `public_key` base64   |
| rsa-2048/3072/4096                 | `rsa_key`: Go's rsa.PrivateKey JSON (N, E, D, Primes, ...)|

and `hmac_key`, the version's HMAC key: a KubeKMS key's derived one (kms_core.keyring
.version_hmac_key), so a key restored into OpenBao MACs as it did here. On restore KubeKMS keeps
deriving its own, so HMACs OpenBao made with a non-hmac key do not verify after the move.

Security property: this module only converts; material reaches it from `KeyService.backup`
(exportable keys with `allow_plaintext_backup`, the export permission) or from the request body,
and its error messages name fields and versions, never values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pybase64
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kms_api.transit import types
from kms_api.transit.envelope import VaultError
from kms_api.transit.inputs import Base64Error, b64decode
from kms_core.algorithms import Primitive, spec_of
from kms_core.lifecycle import PolicyChange
from kms_core.model import Key, KeySpec
from kms_core.transfer import BackupVersion

__all__ = ["Restored", "decode", "encode"]

# OpenBao's KeyType numbers (sdk/helper/keysutil), as its backups store them.
TYPE_NUMBERS: Final = {
    "aes256-gcm96": 0,
    "ecdsa-p256": 1,
    "ed25519": 2,
    "rsa-2048": 3,
    "rsa-4096": 4,
    "chacha20-poly1305": 5,
    "ecdsa-p384": 6,
    "ecdsa-p521": 7,
    "aes128-gcm96": 8,
    "rsa-3072": 9,
    "hmac": 10,
}
_TYPE_NAMES: Final = {number: name for name, number in TYPE_NUMBERS.items()}
_KDF_HKDF_SHA256: Final = 1  # OpenBao's Kdf_hkdf_sha256 (0 is its legacy hmac-sha256-counter)
_CONVERGENT_VERSION: Final = 3  # the nonce derivation KubeKMS shares with OpenBao
_GO_ZERO_TIME: Final = "0001-01-01T00:00:00Z"
_CURVES: Final = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1(), "ecdsa-p521": ec.SECP521R1()}


def _go_time(moment: datetime) -> str:
    """Go's RFC 3339 with nanoseconds, trailing zeros cut (`time.Time`'s JSON)."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def _entry(type_name: str, version: BackupVersion | None, convergent: bool) -> dict[str, Any]:
    """One version as OpenBao's `KeyEntry` (Go's field order); None: the empty entry 0."""
    entry: dict[str, Any] = {
        "key": None, "hmac_key": None, "time": _GO_ZERO_TIME, "ec_x": None, "ec_y": None, "ec_d": None,
        "rsa_key": None, "rsa_public_key": None, "public_key": "", "convergent_version": 0,
        "creation_time": 0, "certificate_chain": None, "external_key_ref": "",
    }  # fmt: skip
    if version is None:
        return entry
    entry["hmac_key"] = pybase64.b64encode_as_string(version.hmac_key)
    entry["time"] = _go_time(version.created_at)
    entry["creation_time"] = int(version.created_at.timestamp())
    entry["convergent_version"] = _CONVERGENT_VERSION if convergent else 0
    raw = version.material
    if type_name in ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "hmac"):
        entry["key"] = pybase64.b64encode_as_string(raw)
        return entry
    private = serialization.load_pem_private_key(raw, password=None, unsafe_skip_rsa_key_validation=True)
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if isinstance(private, ec.EllipticCurvePrivateKey):
        numbers = private.private_numbers()
        entry["ec_x"], entry["ec_y"] = numbers.public_numbers.x, numbers.public_numbers.y
        entry["ec_d"] = numbers.private_value
        entry["public_key"] = _pem(public_der)
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        seed = private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        entry["key"] = pybase64.b64encode_as_string(seed + public_der[-32:])
        entry["public_key"] = pybase64.b64encode_as_string(public_der[-32:])
    elif isinstance(private, rsa.RSAPrivateKey):
        n = private.private_numbers()
        entry["rsa_key"] = {
            "N": n.public_numbers.n, "E": n.public_numbers.e, "D": n.d, "Primes": [n.p, n.q],
            "Precomputed": {"Dp": n.dmp1, "Dq": n.dmq1, "Qinv": n.iqmp, "CRTValues": []},
        }  # fmt: skip
    return entry


def _pem(spki_der: bytes) -> str:
    body = pybase64.b64encode_as_string(spki_der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def encode(key: Key, versions: Sequence[BackupVersion], now: datetime) -> str:
    """The backup of `key` (OpenBao's format) from its versions' material, made at `now`."""
    type_name = types.type_of(key)
    if type_name not in TYPE_NUMBERS:
        raise VaultError(400, f"key type {type_name} has no OpenBao backup format")
    convergent = key.convergent_encryption
    by_version = {v.version: v for v in versions}
    policy: dict[str, Any] = {"name": key.name}
    if spec_of(key.algorithm).primitive is Primitive.HMAC:
        policy["key_size"] = spec_of(key.algorithm).key_bytes  # its `hmac_key` is its material
    policy["keys"] = {
        str(n): _entry(type_name, v, convergent) for n, v in sorted(by_version.items())
        if n >= key.min_decryption_version
    }  # fmt: skip
    policy.update({
        "derived": key.derived,
        "kdf": _KDF_HKDF_SHA256 if key.derived else 0,
        "convergent_encryption": convergent,
        "exportable": key.is_exportable,
        "min_decryption_version": key.min_decryption_version,
        "min_encryption_version": key.min_encryption_version,
        "latest_version": key.version,
        "archive_version": key.version,
        "archive_min_version": key.min_available_version,
        "min_available_version": key.min_available_version,
        "deletion_allowed": key.deletion_allowed,
        "convergent_version": -1 if convergent else 0,
        "type": TYPE_NUMBERS[type_name],
        "backup_info": {"time": _go_time(now), "version": key.version},
        "restore_info": None,
        "allow_plaintext_backup": key.allow_plaintext_backup,
        "version_template": "",
        "storage_prefix": "",
        "auto_rotate_period": key.rotation_period * 1_000_000_000,  # Go's time.Duration: nanoseconds
        "Imported": key.imported,
        "AllowImportedKeyRotation": key.allow_rotation,
        "soft_deleted": key.is_disabled,
    })  # fmt: skip
    base = key.min_available_version
    archive = [] if base else [_entry(type_name, None, False)]
    numbers = range(max(base, 1), key.version + 1)
    archive += [_entry(type_name, by_version.get(n), convergent) for n in numbers]
    document = {"policy": policy, "archived_keys": {"keys": archive}}
    # The standard library, not orjson: RSA and EC numbers are JSON integers beyond 64 bits.
    encoded = json.dumps(document, separators=(",", ":")).encode() + b"\n"  # Go's Encoder ends a line
    return pybase64.b64encode_as_string(encoded)


# ----------------------------------------------------------------------------- restore


@dataclass(frozen=True, slots=True)
class Restored:
    """What a backup restores: the key's spec, its versions (core import format), its latest
    version, the policy to apply, the trim bound, and whether it was soft-deleted."""

    spec: KeySpec
    versions: list[BackupVersion]
    latest: int
    change: PolicyChange
    min_available: int
    soft_deleted: bool

    def __repr__(self) -> str:  # never show material
        return f"Restored(name={self.spec.name!r}, latest={self.latest})"


class _Invalid(Exception):
    """A malformed backup; the text names the field, never its value."""


def _get(obj: Mapping[str, Any], field: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = obj.get(field)
    if value is None:  # absent or null: Go's zero value
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _Invalid(f"field {field!r} has the wrong type")
    return value


def _flag(obj: Mapping[str, Any], field: str) -> bool:
    return bool(_get(obj, field, bool, False))


def _count(obj: Mapping[str, Any], field: str) -> int:
    value = _get(obj, field, int, 0)
    if value < 0:
        raise _Invalid(f"field {field!r} cannot be negative")
    return int(value)


def _time(entry: Mapping[str, Any]) -> datetime:
    text = _get(entry, "time", str, "")
    if text and text != _GO_ZERO_TIME:
        try:
            head, _, rest = text.partition(".")
            if rest:  # Python reads at most microseconds: cut Go's nanoseconds
                digits = "".join(c for c in rest if c.isdigit())
                text = f"{head}.{digits[:6]}{rest[len(digits):]}"
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise _Invalid("a version's 'time' is not an RFC 3339 time") from None
    seconds = _count(entry, "creation_time")
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds) if seconds else datetime.now(UTC)


def _bytes(entry: Mapping[str, Any], field: str) -> bytes:
    value = _get(entry, field, str, "")
    try:
        return b64decode(value)
    except Base64Error:
        raise _Invalid(f"a version's {field!r} is not base64") from None


def _pkcs8(private: Any) -> bytes:
    return bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _material(type_name: str, entry: Mapping[str, Any]) -> bytes:
    """One version's material in the core's import format (raw bytes; PKCS#8 PEM)."""
    if type_name in ("aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "hmac"):
        return _bytes(entry, "key")
    if type_name in _CURVES:
        d, x, y = (_get(entry, f, int) for f in ("ec_d", "ec_x", "ec_y"))
        if d is None or d <= 0:
            raise _Invalid("a version has no 'ec_d'")
        try:
            private = ec.derive_private_key(d, _CURVES[type_name])
        except ValueError:
            raise _Invalid("a version's 'ec_d' is not a key of its curve") from None
        point = private.public_key().public_numbers()
        if (x, y) != (None, None) and (x, y) != (point.x, point.y):
            raise _Invalid("a version's 'ec_x'/'ec_y' do not match its 'ec_d'")
        return _pkcs8(private)
    if type_name == "ed25519":
        raw = _bytes(entry, "key")
        if len(raw) != 64:
            raise _Invalid("a version's ed25519 'key' is not 64 bytes")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if public != raw[32:]:
            raise _Invalid("a version's ed25519 'key' holds another public key")
        return _pkcs8(key)
    rsa_key = _get(entry, "rsa_key", dict)
    if rsa_key is None:
        raise _Invalid("a version has no 'rsa_key'")
    n, e, d = (_get(rsa_key, f, int) for f in ("N", "E", "D"))
    primes = _get(rsa_key, "Primes", list)
    if None in (n, e, d) or primes is None or len(primes) != 2 or not all(type(p) is int for p in primes):
        raise _Invalid("a version's 'rsa_key' needs N, E, D and two Primes")
    p, q = primes
    try:
        numbers = rsa.RSAPrivateNumbers(
            p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
            rsa.RSAPublicNumbers(e, n),
        )  # fmt: skip
        return _pkcs8(numbers.private_key())
    except (ValueError, ZeroDivisionError):
        raise _Invalid("a version's 'rsa_key' is not a consistent RSA key") from None


def _versions(type_name: str, policy: Mapping[str, Any], archive: Sequence[Any]) -> dict[int, BackupVersion]:
    """Every version with material: the archive's (index + archive_min_version), then the
    policy's `keys` for any the archive lacks."""
    base = _count(policy, "archive_min_version")
    found: dict[int, Mapping[str, Any]] = {}
    for index, entry in enumerate(archive):
        if not isinstance(entry, dict):
            raise _Invalid("an archived version is not an object")
        number = base + index
        empty = entry.get("time", _GO_ZERO_TIME) == _GO_ZERO_TIME and not (
            entry.get("key") or entry.get("ec_d") or entry.get("rsa_key")
        )
        if number >= 1 and not empty:
            found[number] = entry
    keys = _get(policy, "keys", dict, {})
    for label, entry in keys.items():
        numbered = isinstance(label, str) and label.isascii() and label.isdigit()
        if not numbered or not isinstance(entry, dict):
            raise _Invalid("the policy's 'keys' are not versions")
        found.setdefault(int(label), entry)
    return {n: BackupVersion(n, _time(e), _material(type_name, e)) for n, e in found.items() if n >= 1}


def _spec(type_name: str, policy: Mapping[str, Any], project: str, name: str) -> KeySpec:
    algorithm, usage = types.CREATABLE[type_name]
    derived, convergent = _flag(policy, "derived"), _flag(policy, "convergent_encryption")
    if derived and _count(policy, "kdf") != _KDF_HKDF_SHA256:
        raise VaultError(
            400,
            "KubeKMS does not restore keys derived with OpenBao's legacy KDF (hmac-sha256-counter): "
            "only kdf hkdf_sha256",
        )
    if type_name == "hmac" and _get(policy, "key_size", int, types.HMAC_KEY_SIZE) != types.HMAC_KEY_SIZE:
        raise VaultError(400, f"KubeKMS hmac keys are HMAC-SHA-256 keys of {types.HMAC_KEY_SIZE} bytes")
    return KeySpec(
        project_id=project, name=name, key_usage=usage, algorithm=algorithm,
        is_exportable=_flag(policy, "exportable"),
        has_delete_protection=not _flag(policy, "deletion_allowed"),
        derived=derived, convergent_encryption=convergent,
        allow_plaintext_backup=_flag(policy, "allow_plaintext_backup"),
        imported=_flag(policy, "Imported"), allow_rotation=_flag(policy, "AllowImportedKeyRotation"),
    )  # fmt: skip


def decode(backup: str, project: str, name: str | None) -> Restored:
    """A backup (OpenBao's or KubeKMS's) as what to restore, named `name` (else the backup's
    own name); VaultError 400 for anything malformed. The name is checked by the caller."""
    try:
        raw = b64decode(backup)
    except Base64Error as exc:
        raise VaultError(400, str(exc)) from None
    try:
        document = json.loads(raw)
    except ValueError:  # not JSON, not UTF-8, or an integer of more digits than Python reads
        raise VaultError(400, "invalid backup: not JSON") from None
    try:
        if not isinstance(document, dict) or not isinstance(document.get("policy"), dict):
            raise _Invalid("no 'policy' object")
        policy = document["policy"]
        type_number = _get(policy, "type", int, 0)
        type_name = _TYPE_NAMES.get(type_number)
        if type_name is None:
            raise VaultError(400, f"invalid backup: key type {type_number} is not supported by KubeKMS")
        key_name = name or _get(policy, "name", str, "")
        if not key_name:
            raise _Invalid("no key name")
        spec = _spec(type_name, policy, project, key_name)
        archived = document.get("archived_keys") or {}
        archive = _get(archived, "keys", list, []) if isinstance(archived, dict) else None
        if archive is None:
            raise _Invalid("'archived_keys' is not an object")
        versions = _versions(type_name, policy, archive)
        latest = _count(policy, "latest_version")
        convergent_ok = all(
            _count(e, "convergent_version") == _CONVERGENT_VERSION
            for e in (policy.get("keys") or {}).values() if isinstance(e, dict)
        )  # fmt: skip
        if spec.convergent_encryption and not convergent_ok:
            raise VaultError(400, "KubeKMS restores convergent keys of convergent version 3 only")
        change = PolicyChange(
            rotation_period=_count(policy, "auto_rotate_period") // 1_000_000_000,
            min_decryption_version=_count(policy, "min_decryption_version") or 1,
            min_encryption_version=_count(policy, "min_encryption_version"),
        )
        return Restored(
            spec, sorted(versions.values(), key=lambda v: v.version), latest, change,
            _count(policy, "min_available_version"), _flag(policy, "soft_deleted"),
        )  # fmt: skip
    except _Invalid as exc:
        raise VaultError(400, f"invalid backup: {exc}") from None
