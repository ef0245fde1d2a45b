"""Run `sqlite_writer.py` children and read their acknowledged writes; inspect a store file raw."""

from __future__ import annotations

import os
import selectors
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

WRITER = Path(__file__).with_name("sqlite_writer.py")
CORE = Path(__file__).resolve().parents[3] / "core"


def spawn(mode: str, data_dir: Path, kek_id: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CORE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(WRITER), mode, str(data_dir), kek_id, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


class LineReader:
    """Complete stdout lines of a child, read with a deadline (a partial last line is not a line)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: list[str] = []
        self._buffer = b""
        self._fd = proc.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def read_until(self, done: Callable[[list[str]], bool], timeout: float) -> bool:
        """Read until `done(lines)` or EOF or timeout; return whether `done` became true."""
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                return False
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return done(self.lines)
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines.extend(line.decode() for line in complete)
        return True

    def drain(self, timeout: float = 10.0) -> list[str]:
        """Read to EOF (after the child exited or was killed) and return every complete line."""
        self.read_until(lambda _: False, timeout)
        self._selector.close()
        return self.lines


def go(procs: list[subprocess.Popen[bytes]], readers: list[LineReader], timeout: float = 20.0) -> None:
    """Wait until every child printed "ready", then release them all at once."""
    for proc, reader in zip(procs, readers, strict=True):
        if not reader.read_until(lambda lines: "ready" in lines, timeout):
            proc.kill()
            raise AssertionError(f"child not ready: {proc.stderr.read().decode() if proc.stderr else ''}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()


def finish(proc: subprocess.Popen[bytes], reader: LineReader, timeout: float = 60.0) -> list[str]:
    """Wait for a child to exit successfully and return its output lines (minus "ready")."""
    lines = reader.drain(timeout)
    code = proc.wait(timeout)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, f"child failed ({code}): {stderr}"
    return [line for line in lines if line != "ready"]


def raw(db: Path) -> sqlite3.Connection:
    """A plain connection to inspect a store file directly, bypassing `SqliteStore`."""
    return sqlite3.connect(db, isolation_level=None)


def assert_consistent(db: Path) -> dict[str, int]:
    """integrity_check and foreign keys are clean, and every key has exactly versions 1..version.

    Returns {key_id: version}."""
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        keys = dict(conn.execute("SELECT id, version FROM keys"))
        stored: dict[str, list[int]] = {}
        for key_id, version in conn.execute("SELECT key_id, version FROM key_versions ORDER BY 1, 2"):
            stored.setdefault(key_id, []).append(version)
        assert set(stored) == set(keys)
        for key_id, version in keys.items():
            assert stored[key_id] == list(range(1, version + 1)), key_id
        dup = conn.execute("SELECT project_id, name FROM keys GROUP BY 1, 2 HAVING COUNT(*) > 1").fetchall()
        assert dup == []
        return keys
    finally:
        conn.close()


def material(db: Path, key_id: str, version: int) -> bytes | None:
    conn = raw(db)
    try:
        row = conn.execute(
            "SELECT sealed FROM key_versions WHERE key_id = ? AND version = ?", (key_id, version)
        ).fetchone()
        return None if row is None else bytes(row[0])
    finally:
        conn.close()
