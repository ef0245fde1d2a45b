"""A full disk (ENOSPC) and a read-only data directory: clear 503s, never a 500, and no corruption.

The data directory lives on its own 2 MiB tmpfs (the suite runs as root, like CI); the disk is
filled by a file next to the database, and remounted read-only (`mount -o remount,ro`) between
two runs of the process.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from fixtures.api import Api, P, b64, unb64
from fixtures.hardening import start_hardened


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed (the hardening suite runs as root): {result.stderr}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mountpoint))
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def test_disk_full_is_a_clear_503_and_recovers(small_disk: Path, tmp_path: Path) -> None:
    handle = start_hardened(tmp_path, name="full", data_dir=small_disk / "data")
    filler = small_disk / "filler"
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, handle.url)
            key = await api.create("before-full")
            ct = (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"kept")})).body
            with filler.open("wb") as out:  # fill every free block
                try:
                    while True:
                        out.write(b"\0" * 65536)
                        out.flush()
                except OSError:
                    pass
            refused = None
            for i in range(300):
                reply = await api.call(
                    "POST", "/api/v1/kms/keys", {"projectId": P, "name": f"k{i}", "description": "x" * 500}
                )
                if reply.status != 200:
                    refused = reply
                    break
            assert refused is not None and refused.status == 503, refused
            assert refused.body["error"] == "ServiceUnavailable"
            assert refused.body["message"] == "The key store cannot write: the disk is full"
            assert int(refused.headers["Retry-After"]) >= 1
            # Reads and cryptography on existing keys go on.
            reply = await api.call("POST", api.key(key["id"], "decrypt"), ct)
            assert unb64(reply.body["plaintext"]) == b"kept"
            # Space comes back: writes work again.
            filler.unlink()
            assert (await api.create("after-full"))["name"] == "after-full"
    finally:
        assert handle.stop() == 0, handle.logs()
    assert '"status":500' not in handle.logs() and "Traceback" not in handle.logs()
    assert _integrity(small_disk / "data" / "kubekms.db") == "ok"


async def test_read_only_data_dir_refuses_to_start_clearly_and_writes_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    # A data dir that turns read-only under a running process cannot be simulated here (a
    # remount is refused while SQLite holds its files open), so the start-up path is checked.
    data = small_disk / "data"
    first = start_hardened(tmp_path, name="rw", data_dir=data)
    async with aiohttp.ClientSession() as http:
        key = await Api(http, first.url).create("before-ro")
    assert first.stop() == 0
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    _mount("-o", "remount,ro", str(small_disk))
    try:
        refused = start_hardened(tmp_path, name="ro", data_dir=data, wait=False)
        assert refused.proc.wait(30) == 2, refused.logs()
        assert "is read-only; the key store must write there" in refused.logs()
        assert "Traceback" not in refused.logs()
    finally:
        _mount("-o", "remount,rw", str(small_disk))
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    again = start_hardened(tmp_path, name="rw2", data_dir=data)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, again.url)
            assert (await api.call("GET", api.key(key["id"]))).body["key"]["name"] == "before-ro"
    finally:
        assert again.stop() == 0
    assert _integrity(data / "kubekms.db") == "ok"
