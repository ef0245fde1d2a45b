"""A key's lifecycle policy: scheduled rotation, version bounds, trimming — one set of rules for
every dialect, store and the `KmsKey` spec.

The rules and their error texts are OpenBao Transit's (checked against a real `bao` server), so
the Transit dialect can pass them through unchanged and the Infisical dialect's documented
extensions behave the same way:

- `rotation_period`: seconds between scheduled rotations, 0 (never) or at least an hour;
- `min_decryption_version` (default 1): older versions no longer decrypt or verify;
- `min_encryption_version` (default 0 = the latest): older versions may not be chosen to
  encrypt, sign or MAC;
- `min_available_version` (default 0): versions below it are trimmed — their sealed material is
  destroyed. Trimming is irreversible, so it is refused unless decryption (and encryption) are
  already bounded at or above it.

Security property: the checks are pure functions of the key record and the request, so a bound
cannot be bypassed by going through another dialect or mode; a trimmed version can never be
brought back, because its material no longer exists anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from kms_core.errors import BadRequest
from kms_core.model import Key

__all__ = [
    "MAX_DURATION",
    "MIN_ROTATION_PERIOD",
    "PolicyChange",
    "VersionDisallowed",
    "VersionState",
    "apply",
    "check_trim",
    "decryption_versions",
    "encryption_version",
    "format_duration",
    "is_due",
    "next_rotation",
    "parse_duration",
    "version_state",
]

MIN_ROTATION_PERIOD: Final = 3600
# Vault's DurationSecond: a number of seconds, or Go-style units with Vault's extra `d` (days).
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Go's largest time.Duration (2^63-1 ns), Vault's own limit: anything longer cannot be stored as
# an SQLite integer's worth of nanoseconds, added to a datetime, or told apart from "never".
MAX_DURATION: Final = (2**63 - 1) // 1_000_000_000
_TOO_LONG: Final = f"a duration must be at most {MAX_DURATION} seconds (about 292 years)"


class VersionDisallowed(BadRequest):
    """A ciphertext or signature names a version below `min_decryption_version` (Vault's text)."""

    def __init__(self) -> None:
        super().__init__("ciphertext or signature version is disallowed by policy (too old)")


class VersionState(StrEnum):
    """What one version may still do, derived from the key's bounds (never stored)."""

    PRIMARY = "primary"  # the latest version: encrypts, signs and MACs by default
    ENABLED = "enabled"  # decrypts and verifies (and may be chosen to encrypt)
    DECRYPT_ONLY = "decrypt-only"  # below min_encryption_version: decrypts and verifies only
    DISABLED = "disabled"  # below min_decryption_version: material kept, every use refused
    DESTROYED = "destroyed"  # below min_available_version: material trimmed


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """The policy fields a caller asks to change; None leaves a field as it is."""

    rotation_period: int | None = None
    min_decryption_version: int | None = None
    min_encryption_version: int | None = None

    def is_empty(self) -> bool:
        return self.rotation_period is None and self.min_decryption_version is None and (
            self.min_encryption_version is None
        )


def parse_duration(value: str | int | float) -> int:
    """Seconds in `value`: an integer, or a Go/Vault duration string such as `24h`, `1h30m`, `7d`.

    Raise BadRequest for anything else (negative or unparsable)."""
    if isinstance(value, bool):
        raise BadRequest("a duration must be a number of seconds or a string such as 24h")
    if isinstance(value, int | float):
        if value < 0:
            raise BadRequest("a duration cannot be negative")
        if not value <= MAX_DURATION:  # also NaN and infinity
            raise BadRequest(_TOO_LONG)
        return int(value)
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit alone admits "²", which int() refuses
        return parse_duration(int(text))
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise BadRequest(f'invalid duration "{value}": use seconds or units s, m, h, d (e.g. 24h, 90d)')
    return parse_duration(total)  # bounded like a number of seconds (a 400-digit `d` is infinity)


def format_duration(seconds: int) -> str:
    """The shortest `parse_duration` string for `seconds` (`0s`, `90m`, `24h`, `7d`...)."""
    if seconds <= 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def apply(key: Key, change: PolicyChange) -> tuple[Key, list[str]]:
    """The key with `change` applied, and Vault's warnings; BadRequest with Vault's text when a
    bound is impossible (negative, above the latest version, below the trimmed versions, or an
    encryption bound under the decryption bound)."""
    warnings: list[str] = []
    updated = key
    if change.rotation_period is not None:
        period = change.rotation_period
        if period != 0 and period < MIN_ROTATION_PERIOD:
            raise BadRequest("auto rotate period must be 0 to disable or at least an hour")
        updated = replace(updated, rotation_period=period)
    if change.min_decryption_version is not None:
        wanted = change.min_decryption_version
        if wanted < 0:
            raise BadRequest("min decryption version cannot be negative")
        if wanted == 0:
            wanted = 1
            warnings.append("transit key numbering starts at 1; forcing minimum to 1")
        if wanted != key.min_decryption_version:
            if wanted > key.version:
                raise BadRequest(
                    f"cannot set min decryption version of {wanted}, latest key version is {key.version}"
                )
            if wanted < key.min_available_version:
                raise BadRequest("min decryption version should not be less then min available version")
        updated = replace(updated, min_decryption_version=wanted)
    if change.min_encryption_version is not None:
        wanted = change.min_encryption_version
        if wanted < 0:
            raise BadRequest("min encryption version cannot be negative")
        if wanted != key.min_encryption_version:
            if wanted > key.version:
                raise BadRequest(
                    f"cannot set min encryption version of {wanted}, latest key version is {key.version}"
                )
            if key.min_available_version > 0 and wanted < key.min_available_version:
                raise BadRequest("min encryption version should not be less than min available version")
        updated = replace(updated, min_encryption_version=wanted)
    low_enc, low_dec = updated.min_encryption_version, updated.min_decryption_version
    if low_enc > 0 and low_enc < low_dec:
        raise BadRequest(
            "cannot set min encryption/decryption values; min encryption version of "
            f"{low_enc} must be greater than or equal to min decryption version of {low_dec}"
        )
    return updated, warnings


def check_trim(key: Key, min_available: int) -> None:
    """Raise BadRequest unless trimming every version below `min_available` is allowed: only
    versions nobody may use any more can be destroyed.

    OpenBao's checks, in OpenBao's order and with its exact texts (typo included: "minmum"), so
    both dialects give the same refusal when several apply: decrement, encryption bound not set,
    above the encryption bound, above the decryption bound, not positive. OpenBao's two other
    checks cannot fire here: `min_decryption_version` is never 0 (`apply` forces it to 1) and a
    negative value is already a decrement (`min_available_version` starts at 0)."""
    if min_available < key.min_available_version:
        raise BadRequest("minimum available version cannot be decremented")
    if key.min_encryption_version == 0:
        raise BadRequest("minimum available version cannot be set when minimum encryption version is not set")
    if min_available > key.min_encryption_version:
        raise BadRequest("minimum available version cannot be greater than minmum encryption version")
    if min_available > key.min_decryption_version:
        raise BadRequest("minimum available version cannot be greater than minimum decryption version")
    if min_available <= 0:
        raise BadRequest("minimum available version should be positive")


def encryption_version(key: Key, requested: int | None = None) -> int:
    """The version to encrypt, sign or MAC with: the latest, or `requested` within the bounds."""
    if not requested:
        return key.version
    if requested > key.version:
        raise BadRequest("requested version for encryption is higher than the latest key version")
    if requested < key.min_encryption_version:
        raise BadRequest("requested version for encryption is less than the minimum encryption key version")
    if requested < max(key.min_decryption_version, key.min_available_version, 1):
        # Vault would encrypt with a version it then refuses to decrypt; never hand out such a
        # ciphertext (or one under trimmed material).
        raise VersionDisallowed()
    return requested


def decryption_versions(key: Key) -> range:
    """The versions that may decrypt and verify, oldest first."""
    return range(max(key.min_decryption_version, key.min_available_version, 1), key.version + 1)


def version_state(key: Key, version: int) -> VersionState:
    """The state of `version` of `key` under its bounds."""
    if version < key.min_available_version:
        return VersionState.DESTROYED
    if version < key.min_decryption_version:
        return VersionState.DISABLED
    if version == key.version:
        return VersionState.PRIMARY
    if version < key.min_encryption_version:
        return VersionState.DECRYPT_ONLY
    return VersionState.ENABLED


def next_rotation(key: Key) -> datetime | None:
    """When the scheduled rotation of `key` is due, or None when it has no rotation period.

    Measured from the current version's creation (or the key's when unknown): a process that
    was down for several periods rotates once when it comes back, not once per missed period."""
    if key.rotation_period <= 0:
        return None
    since = key.rotated_at or key.created_at
    return since + timedelta(seconds=key.rotation_period)


def is_due(key: Key, now: datetime) -> bool:
    """Whether the scheduled rotation of `key` should run at `now` (never for a disabled key)."""
    due = next_rotation(key)
    return due is not None and not key.is_disabled and due <= now
