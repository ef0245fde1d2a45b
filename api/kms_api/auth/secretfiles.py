"""Per-data-dir secrets (admin token, JWT signing secret) created once with mode 0600.

Security property: files are created with O_EXCL and mode 0600 from the start (no window where
they are world-readable), and concurrent workers racing on first start all end up with the one
value that won the race.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def ensure_secret_file(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """Return (value, created): read the secret at `path`, or create it with a fresh random value."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = read_secret_file(path)
        if existing:
            return existing, False
        raise
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value, True


def read_secret_file(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()
