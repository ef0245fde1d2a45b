"""SIGKILL the API process under concurrent load (create, rotate, update, delete, bulk import,
encrypt), restart it, and check that every acknowledged operation is intact.

After each crash: every acknowledged key exists unless its deletion was acknowledged (or was in
flight), its version is at least the acknowledged one, every acknowledged ciphertext decrypts to
its plaintext, and in the database every key's versions are exactly 1..version, one material each.
`KUBEKMS_CRASH_ITERATIONS` (default 5) sets the number of crashes; `make soak` runs more.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from fixtures.api import Api, P, b64, unb64
from fixtures.hardening import start_hardened

ITERATIONS = int(os.environ.get("KUBEKMS_CRASH_ITERATIONS", "5"))
WORKERS = 4


@dataclass
class Ledger:
    """What the server acknowledged (200) and what was in flight when it died."""

    keys: dict[str, int] = field(default_factory=dict)  # key id -> acknowledged version
    descriptions: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    in_flight_delete: set[str] = field(default_factory=set)
    in_flight_description: dict[str, str] = field(default_factory=dict)
    ciphertexts: list[tuple[str, str, bytes]] = field(default_factory=list)


async def _worker(api: Api, ledger: Ledger, worker: int, rng: random.Random) -> None:
    mine: list[str] = []
    n = 0
    try:
        while True:
            n += 1
            choice = rng.random()
            if not mine or choice < 0.2:
                reply = await api.call(
                    "POST", "/api/v1/kms/keys", {"projectId": P, "name": f"w{worker}-{rng.getrandbits(40):x}"}
                )
                if reply.status == 200:
                    ledger.keys[reply.body["key"]["id"]] = 1
                    mine.append(reply.body["key"]["id"])
            elif choice < 0.3:
                names = [f"b{worker}-{rng.getrandbits(40):x}" for _ in range(2)]
                entry = {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"}
                keys = [{"name": name, **entry, "keyMaterial": b64(os.urandom(32))} for name in names]
                body = {"projectId": P, "keys": keys}
                reply = await api.call("POST", "/api/v1/kms/keys/bulk-import", body)
                for key in reply.body["keys"]:
                    ledger.keys[key["id"]] = 1
                    mine.append(key["id"])
            elif choice < 0.5:
                key_id = rng.choice(mine)
                reply = await api.call("POST", api.key(key_id, "rotate"))
                assert reply.status == 200, reply
                ledger.keys[key_id] = max(ledger.keys[key_id], reply.body["key"]["version"])
            elif choice < 0.6:
                key_id = rng.choice(mine)
                text = f"d{n}"
                ledger.in_flight_description[key_id] = text
                reply = await api.call("PATCH", api.key(key_id), {"description": text})
                assert reply.status == 200, reply
                ledger.descriptions[key_id] = text
            elif choice < 0.65 and len(mine) > 1:
                key_id = mine.pop(rng.randrange(len(mine)))
                ledger.in_flight_delete.add(key_id)
                reply = await api.call("DELETE", api.key(key_id))
                assert reply.status == 200, reply
                ledger.deleted.add(key_id)
            else:
                key_id = rng.choice(mine)
                plaintext = os.urandom(24)
                reply = await api.call("POST", api.key(key_id, "encrypt"), {"plaintext": b64(plaintext)})
                assert reply.status == 200, reply
                ledger.ciphertexts.append((key_id, reply.body["ciphertext"], plaintext))
    except (TimeoutError, aiohttp.ClientError):
        return  # the process was killed: whatever was in flight is unacknowledged


async def _load_then_kill(url: str, handle_kill: object, ledger: Ledger, rng: random.Random) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        api = Api(http, url)
        tasks = [
            asyncio.create_task(_worker(api, ledger, w, random.Random(rng.random()))) for w in range(WORKERS)
        ]
        await asyncio.sleep(rng.uniform(0.3, 1.0))
        handle_kill()  # type: ignore[operator]
        await asyncio.wait_for(asyncio.gather(*tasks), 15)


def _check_database(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        versions: dict[str, list[int]] = {}
        for key_id, version in conn.execute(
            "SELECT key_id, version FROM key_versions ORDER BY key_id, version"
        ):
            versions.setdefault(key_id, []).append(version)
        current = dict(conn.execute("SELECT id, version FROM keys").fetchall())
    finally:
        conn.close()
    for key_id, version in current.items():
        assert versions.get(key_id) == list(range(1, version + 1)), (key_id, version, versions.get(key_id))
    assert set(versions) <= set(current)  # no orphaned material
    return current


async def _verify(url: str, ledger: Ledger, current: dict[str, int]) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(http, url)
        for key_id, acked in ledger.keys.items():
            if key_id in ledger.deleted:
                assert key_id not in current
                continue
            if key_id not in current:
                assert key_id in ledger.in_flight_delete, f"acknowledged key {key_id} lost"
                continue
            assert current[key_id] >= acked
            if key_id in ledger.descriptions:
                reply = await api.call("GET", api.key(key_id))
                got = reply.body["key"]["description"]
                assert got in {ledger.descriptions[key_id], ledger.in_flight_description.get(key_id)}
        for key_id, ciphertext, plaintext in ledger.ciphertexts:
            if key_id not in current:
                continue
            reply = await api.call("POST", api.key(key_id, "decrypt"), {"ciphertext": ciphertext})
            assert reply.status == 200 and unb64(reply.body["plaintext"]) == plaintext, reply


async def test_sigkill_under_load_loses_no_acknowledged_operation(tmp_path: Path) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    ledger = Ledger()
    acknowledged_before = 0
    for iteration in range(ITERATIONS):
        handle = start_hardened(tmp_path, name=f"run{iteration}")
        await _load_then_kill(handle.url, lambda h=handle: h.proc.send_signal(signal.SIGKILL), ledger, rng)
        assert handle.proc.wait(10) == -signal.SIGKILL
        current = _check_database(tmp_path / "data" / "kubekms.db")
        assert len(ledger.keys) > acknowledged_before, "the load made no progress before the crash"
        acknowledged_before = len(ledger.keys)
    survivor = start_hardened(tmp_path, name="verify")
    try:
        await _verify(survivor.url, ledger, current)
    finally:
        assert survivor.stop() == 0
    assert len(ledger.ciphertexts) > 0 and any(v > 1 for v in ledger.keys.values())
