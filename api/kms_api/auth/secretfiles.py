"""Per-data-dir secrets (admin token, JWT signing secret) created once with mode 0600.

Security property: files are created with O_EXCL and mode 0600 from the start (no window where
they are world-readable), and concurrent workers racing on first start all end up with the one
value that won the race. An existing file readable or writable by group or others is reported
with a warning at every start (as `root.key` is, `kms_core.sealing.factory`): whoever can read
`admin-token` is the admin, and whoever can read `auth-secret` can mint any identity's tokens.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger("kubekms.auth")
# (path, mode) pairs already reported by this process (and, through fork, by its workers): the
# supervisor and the app both read the files at start, and one warning per file is enough.
_reported: set[tuple[str, int]] = set()


def ensure_secret_file(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """Return (value, created): read the secret at `path`, or create it with a fresh random value."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        existing = read_secret_file(path)
        if existing:
            return existing, False
        raise
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # exact mode whatever the umask
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value, True


def check_permissions(path: Path) -> None:
    """Warn when `path` is open to group or others (the path and mode are logged, never content)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and (str(path), mode) not in _reported:
        _reported.add((str(path), mode))
        log.warning(
            "%s is readable or writable by group or others (mode %o); chmod 600 it", path, mode,
            extra={"path": str(path), "mode": f"{mode:o}"},
        )


def read_secret_file(path: Path) -> str:
    check_permissions(path)
    return path.read_text(encoding="utf-8").strip()
