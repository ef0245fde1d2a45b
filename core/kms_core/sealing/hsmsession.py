"""The process's logged-in PKCS#11 sessions, one per token, and their recovery after a token fault.

SoftHSM (like many libraries initialised without locking callbacks) is not thread-safe, and
login state is per token per process: so every PKCS#11 call runs under one process-wide lock,
sealers on one token share one logged-in session, and the library is finalised when the last
session closes (the next sealer starts from a fresh C_Initialize and sees new tokens).

When the token goes away (device removed, token directory deleted, session closed under us),
the session is marked broken; the next call after a backoff delay (doubling up to a cap) opens
and logs in a new session, finalising and re-initialising the library if the token is not found
on the old initialisation. Until then callers get `Unavailable` with the remaining delay, so a
dead HSM is not hammered by every request.

Security property: the PIN is kept only inside `_TokenSession` (never in repr, logs or errors)
because re-login needs it; a second sealer presenting another PIN to a logged-in token is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import exceptions as p11

from kms_core.errors import ConfigError, Unavailable

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Library

log = logging.getLogger("kms_core.sealing")

# One lock for every PKCS#11 call in the process (the library may not be thread-safe).
LOCK = threading.RLock()

# Failures that mean the token or session is gone, as opposed to a blob that does not decrypt.
DEVICE_ERRORS: tuple[type[Exception], ...] = (
    p11.DeviceError, p11.DeviceMemory, p11.DeviceRemoved, p11.HostMemory, p11.SessionClosed,
    p11.SessionHandleInvalid, p11.TokenNotPresent, p11.TokenNotRecognised, p11.UserNotLoggedIn,
    p11.KeyHandleInvalid, p11.ObjectHandleInvalid, p11.FunctionCancelled,
)  # fmt: skip
PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked, p11.PinExpired)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 10.0


def reason(exc: BaseException) -> str:
    # python-pkcs11 messages are usually empty; the class name is the PKCS#11 return code.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def pin_digest(pin: str) -> bytes:
    return hashlib.sha256(b"kubekms-hsm-pin\0" + pin.encode()).digest()


@dataclass
class TokenSession:
    """The process's one logged-in session on a token, shared by every sealer using it.

    `generation` grows on every reconnect, so sealers know their key handles are stale."""

    lib_path: str
    token: pkcs11.Token
    session: pkcs11.Session
    pin_digest: bytes
    slot: int | None
    token_label: str | None
    pin: str = field(repr=False)
    users: int = 1
    generation: int = 0
    broken: bool = False
    retry_at: float = 0.0
    backoff: float = BACKOFF_START_S

    def mark_broken(self, exc: BaseException) -> Unavailable:
        """Record a device fault; the Unavailable to raise (retry after the backoff delay)."""
        if not self.broken:
            log.warning("HSM session lost (%s); reconnecting with backoff", reason(exc))
            self.broken = True
            self.backoff = BACKOFF_START_S
        self.retry_at = time.monotonic() + self.backoff
        return Unavailable(f"HSM unavailable: {reason(exc)}", retry_after=self.backoff)

    def ensure(self) -> None:
        """Reconnect a broken session when its backoff has elapsed; raise Unavailable until then."""
        if not self.broken:
            return
        wait = self.retry_at - time.monotonic()
        if wait > 0:
            raise Unavailable("HSM unavailable: reconnecting", retry_after=wait)
        try:
            self._reopen()
        except (p11.PKCS11Error, ConfigError) as exc:
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
            self.retry_at = time.monotonic() + self.backoff
            raise Unavailable(f"HSM unavailable: {reason(exc)}", retry_after=self.backoff) from None
        self.broken = False
        self.generation += 1
        log.warning("HSM session re-established on token '%s'", self.token.label)

    def _reopen(self) -> None:
        with contextlib.suppress(p11.PKCS11Error):
            self.session.close()
        try:
            token = find_token(pkcs11.lib(self.lib_path), self.slot, self.token_label)
            session = token.open(user_pin=self.pin)
        except (p11.PKCS11Error, ConfigError):
            if any(s is not self and s.lib_path == self.lib_path for s in sessions.values()):
                raise
            # A token re-created or re-inserted is only seen after C_Finalize + C_Initialize.
            with contextlib.suppress(p11.PKCS11Error):
                pkcs11.lib(self.lib_path).finalize()
            token = find_token(pkcs11.lib(self.lib_path), self.slot, self.token_label)
            session = token.open(user_pin=self.pin)
        # A re-created token may sit in another slot: re-key the shared session.
        sessions.pop((self.lib_path, self.token.slot.slot_id), None)
        self.token, self.session = token, session
        sessions[(self.lib_path, token.slot.slot_id)] = self


sessions: dict[tuple[str, int], TokenSession] = {}


def find_token(lib: Library, slot: int | None, token_label: str | None) -> pkcs11.Token:
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


def acquire(lib_path: str, pin: str, slot: int | None, token_label: str | None) -> TokenSession:
    """Find the token and return its shared logged-in session (logging in on first use)."""
    if not os.path.isfile(lib_path):
        raise ConfigError(f"PKCS#11 library '{lib_path}' does not exist")
    try:
        token = find_token(pkcs11.lib(lib_path), slot, token_label)
        shared = sessions.get((lib_path, token.slot.slot_id))
        if shared is not None:
            if not hmac.compare_digest(shared.pin_digest, pin_digest(pin)):
                raise ConfigError(
                    f"HSM token '{shared.token.label}' is already logged in by this process with another PIN"
                )
            shared.users += 1
            return shared
        try:
            session = token.open(user_pin=pin)
        except PIN_ERRORS as exc:
            raise ConfigError(
                f"HSM login to token '{token.label}' failed ({type(exc).__name__}): check the PIN"
            ) from None
        shared = TokenSession(lib_path, token, session, pin_digest(pin), slot, token_label, pin)
        sessions[(lib_path, token.slot.slot_id)] = shared
        return shared
    except p11.PKCS11Error as exc:
        finalize_if_unused(lib_path)
        raise Unavailable(f"HSM unavailable: {reason(exc)}") from None
    except ConfigError:
        finalize_if_unused(lib_path)
        raise


def release(shared: TokenSession) -> None:
    shared.users -= 1
    if shared.users > 0:
        return
    if sessions.get((shared.lib_path, shared.token.slot.slot_id)) is shared:
        del sessions[(shared.lib_path, shared.token.slot.slot_id)]
    # A failed close means the session is already gone; finalising below cleans up what is left.
    with contextlib.suppress(p11.PKCS11Error):
        shared.session.close()
    finalize_if_unused(shared.lib_path)


def finalize_if_unused(lib_path: str) -> None:
    if any(s.lib_path == lib_path for s in sessions.values()):
        return
    # Best effort: the next pkcs11.lib() call initialises the library again either way.
    with contextlib.suppress(p11.PKCS11Error):
        pkcs11.lib(lib_path).finalize()
