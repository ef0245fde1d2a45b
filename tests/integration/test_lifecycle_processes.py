"""The lifecycle scheduler in real `kubekms-api` processes on real SQLite: exactly-once scheduled
rotation with two processes (one of them with `--workers 2`) on one data directory, missed
rotations made once, recoverable deletion and its purge, `KUBEKMS_DELETION_WINDOW=0`, and the
audit event of each step. Time is injected through the test-only scheduler clock
(`KUBEKMS_TEST_HOOKS` + `KUBEKMS_TEST_CLOCK_OFFSET=@file`), never slept.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from fixtures.api import Api, ApiProcess, b64, start_api, unb64
from fixtures.hardening import start_hardened
from integration.helpers.lifecycle import (
    ADMIN,
    HOUR,
    audit_events,
    clock_env,
    decrypts,
    scalar,
    seed,
    service,
    set_clock,
    versions,
    wait_for,
)
from integration.helpers.sqlite_processes import assert_consistent
from kms_core.errors import DuplicateName
from kms_core.identity import SCHEDULER

KEYS = 12
ROUNDS = 6
SETTLE = 0.5  # ten scheduler passes (interval 0.05 s): long enough for a second rotation to show


def _start(root: Path, clock: Path, name: str, *args: str, **env: str) -> ApiProcess:
    return start_hardened(root, *args, env={**clock_env(clock), **env}, name=name, data_dir=root / "data")


async def test_two_processes_rotate_each_due_key_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = tmp_path / "clock"
    set_clock(clock, 0)
    ciphertexts = await seed(data, KEYS)
    db = data / "kubekms.db"
    first = _start(tmp_path, clock, "a", "--workers", "2")
    second = _start(tmp_path, clock, "b")
    try:
        await asyncio.sleep(SETTLE)
        assert set(versions(db).values()) == {1}  # nothing is due before the period
        for round_ in range(1, ROUNDS + 1):
            # Every scheduler (three processes) sees every key due at the same injected time.
            set_clock(clock, round_ * HOUR + 60)
            await wait_for(lambda r=round_: min(versions(db).values()) > r, what=f"round {round_}")
            await asyncio.sleep(SETTLE)
            assert set(versions(db).values()) == {round_ + 1}, f"a key rotated twice in round {round_}"
            assert_consistent(db)  # versions 1..n, one material each
    finally:
        first.stop()
        second.stop()
    events = audit_events(first.logs(), second.logs(), event_type="rotate-cmek")
    assert len(events) == KEYS * ROUNDS  # one audit event per rotation, written by its maker
    assert {(e["keyId"], e["metadata"]["version"]) for e in events} == {
        (key_id, v) for key_id in ciphertexts for v in range(2, ROUNDS + 2)
    }
    assert {e["identity"] for e in events} == {SCHEDULER.id}
    assert {e["metadata"]["trigger"] for e in events} == {"scheduled"}
    assert len({e["pid"] for e in events}) >= 2, "the schedulers never raced"
    await decrypts(data, ciphertexts)  # every version-1 ciphertext still decrypts


async def test_missed_rotations_happen_once_and_the_next_is_a_period_later(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clock = tmp_path / "clock"
    ciphertexts = await seed(data, 3)
    db = data / "kubekms.db"
    set_clock(clock, 5 * HOUR)  # the process was "down" for five periods
    api = _start(tmp_path, clock, "api")
    try:
        await wait_for(lambda: min(versions(db).values()) >= 2, what="the missed rotation")
        await asyncio.sleep(SETTLE)
        assert set(versions(db).values()) == {2}  # once, not once per missed period
        set_clock(clock, 6 * HOUR - 120)  # just before a period after that rotation
        await asyncio.sleep(SETTLE)
        assert set(versions(db).values()) == {2}
        set_clock(clock, 6 * HOUR + 120)
        await wait_for(lambda: set(versions(db).values()) == {3}, what="the next rotation")
    finally:
        api.stop()
    await decrypts(data, ciphertexts)


async def test_delete_restore_and_purge(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    data = tmp_path / "data"
    clock = tmp_path / "clock"
    set_clock(clock, 0)
    api = _start(tmp_path, clock, "api", KUBEKMS_DELETION_WINDOW="1h")
    db = data / "kubekms.db"
    client = Api(http, api.url)
    try:
        key = await client.create("payroll")
        sealed = (await client.call("POST", client.key(key["id"], "encrypt"), {"plaintext": b64(b"salary")}))
        ciphertext = sealed.body["ciphertext"]
        assert (await client.call("DELETE", client.key(key["id"]))).status == 200
        # Gone from every read, and its name is free.
        assert (await client.call("GET", client.key(key["id"]))).status == 404
        assert (await client.call("GET", "/api/v1/kms/keys/key-name/payroll?projectId=proj")).status == 404
        listed = await client.call("GET", "/api/v1/kms/keys?projectId=proj")
        assert [k["id"] for k in listed.body["keys"]] == []
        decrypt = {"ciphertext": ciphertext}
        assert (await client.call("POST", client.key(key["id"], "decrypt"), decrypt)).status == 404
        newcomer = await client.create("payroll")
        # Restored within the window (another process on the same data dir, as an admin would).
        svc = service(data, deletion_window=HOUR)
        try:
            with pytest.raises(DuplicateName):
                await svc.restore(ADMIN.identity, key["id"])
            restored = (await svc.restore(ADMIN.identity, key["id"], "payroll-restored")).result
        finally:
            await svc.close()
        assert (restored.id, restored.name) == (key["id"], "payroll-restored")
        got = await client.call("GET", client.key(key["id"]))
        assert got.status == 200 and got.body["key"]["name"] == "payroll-restored"
        opened = await client.call("POST", client.key(key["id"], "decrypt"), decrypt)
        assert unb64(opened.body["plaintext"]) == b"salary"  # same material
        # Deleted again; the scheduler purges it once the window has passed.
        assert (await client.call("DELETE", client.key(key["id"]))).status == 200
        assert scalar(db, "SELECT COUNT(*) FROM deleted_key_versions WHERE key_id = ?", key["id"]) == 1
        set_clock(clock, HOUR - 120)
        await asyncio.sleep(SETTLE)
        assert scalar(db, "SELECT COUNT(*) FROM deleted_keys WHERE id = ?", key["id"]) == 1
        set_clock(clock, HOUR + 120)
        await wait_for(lambda: scalar(db, "SELECT COUNT(*) FROM deleted_keys WHERE id = ?", key["id"]) == 0)
        assert scalar(db, "SELECT COUNT(*) FROM deleted_key_versions WHERE key_id = ?", key["id"]) == 0
        assert scalar(db, "SELECT COUNT(*) FROM key_versions WHERE key_id = ?", key["id"]) == 0
        assert (await client.call("GET", client.key(newcomer["id"]))).status == 200  # untouched
    finally:
        api.stop()
    deletes = audit_events(api.logs(), event_type="delete-cmek")
    assert [(e["keyId"], e["outcome"]) for e in deletes] == [(key["id"], "success")] * 2
    purges = audit_events(api.logs(), event_type="purge-cmek")
    assert [(e["keyId"], e["identity"], e["metadata"]["keyName"]) for e in purges] == [
        (key["id"], SCHEDULER.id, "payroll-restored")
    ]


async def test_a_zero_window_destroys_at_once(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    api = start_api(tmp_path / "data", tmp_path / "api.log", env={**clock_env(tmp_path / "clock"),
                                                                  "KUBEKMS_DELETION_WINDOW": "0"})
    db = tmp_path / "data" / "kubekms.db"
    client = Api(http, api.url)
    try:
        key = await client.create("ephemeral")
        assert (await client.call("DELETE", client.key(key["id"]))).status == 200
        for table, column in (("keys", "id"), ("key_versions", "key_id"), ("deleted_keys", "id"),
                              ("deleted_key_versions", "key_id")):  # fmt: skip
            assert scalar(db, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", key["id"]) == 0, table
    finally:
        api.stop()
    assert [e["keyId"] for e in audit_events(api.logs(), event_type="delete-cmek")] == [key["id"]]
