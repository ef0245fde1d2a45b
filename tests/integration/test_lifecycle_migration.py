"""A data dir written before the lifecycle schema (only MIGRATIONS[0] applied) opens with its keys
and versions intact, and scheduled rotation measures a key rotated back then from its newest
version, not from its creation."""

from __future__ import annotations

import base64
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixtures.api import ROOT_KEY
from integration.helpers.lifecycle import ADMIN, service
from integration.helpers.sqlite_processes import assert_consistent
from kms_core import material
from kms_core.lifecycle import PolicyChange, next_rotation
from kms_core.model import Algorithm
from kms_core.schedule import LifecycleScheduler
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.stores import schema


def _old_data_dir(data_dir: Path, now: datetime) -> dict[str, datetime]:
    """Schema version 1 with two keys: `rotated` (v1 ten hours ago, v2 thirty minutes ago) and
    `original` (v1 only, ten hours ago). Returns each key's newest version's creation time."""
    sealer = RootKeySealer(base64.b64decode(ROOT_KEY))
    data_dir.mkdir(mode=0o700)
    conn = sqlite3.connect(data_dir / "kubekms.db", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for statement in schema.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, ?)", (schema.now_ms(),))
    conn.execute("INSERT INTO meta VALUES ('org_id', 'org-1'), ('kek_id', ?)", (sealer.kek_id,))
    long_ago, lately = now - timedelta(hours=10), now - timedelta(minutes=30)
    newest = {}
    for key_id, made in (("rotated", [long_ago, lately]), ("original", [long_ago])):
        conn.execute(
            "INSERT INTO keys VALUES"
            " (?, 'proj', ?, NULL, 0, 'encrypt-decrypt', 'aes-256-gcm', ?, 0, 0, ?, ?)",
            (key_id, key_id, len(made), schema.to_ms(long_ago), schema.to_ms(long_ago)),
        )
        for version, at in enumerate(made, start=1):
            sealed = material.mint(key_id, version, Algorithm.AES_256_GCM, sealer)
            row = (key_id, version, sealed, schema.to_ms(at))
            conn.execute("INSERT INTO key_versions VALUES (?, ?, ?, ?)", row)
        newest[key_id] = made[-1]
    conn.close()
    return newest


async def test_an_old_data_dir_opens_and_rotates_from_its_newest_version(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    data = tmp_path / "data"
    newest = _old_data_dir(data, now)
    svc = service(data)
    try:
        keys = {k: (await svc.get(ADMIN.identity, k)).result for k in newest}
        assert {k: key.version for k, key in keys.items()} == {"rotated": 2, "original": 1}
        assert {k: key.rotated_at for k, key in keys.items()} == newest
        assert {k: (key.rotation_period, key.min_decryption_version) for k, key in keys.items()} == {
            "rotated": (0, 1), "original": (0, 1)}  # fmt: skip
        # Migration 4's flags: what every key made before them was.
        assert {(k.allow_plaintext_backup, k.imported, k.allow_rotation) for k in keys.values()} == {
            (False, False, False)}  # fmt: skip
        old = (await svc.encrypt(ADMIN.identity, "rotated", b"before", 1)).result
        for key_id in newest:
            await svc.set_policy(ADMIN.identity, key_id, PolicyChange(rotation_period=3600))
        rotated = (await svc.get(ADMIN.identity, "rotated")).result
        assert next_rotation(rotated) == newest["rotated"] + timedelta(hours=1)
        scheduler = LifecycleScheduler(svc, clock=lambda: now)
        done = await scheduler.run_once()
        assert [k.id for k in done.rotated] == ["original"]  # "rotated" is not due for 30 minutes
        scheduler.clock = lambda: now + timedelta(minutes=31)
        assert [k.id for k in (await scheduler.run_once()).rotated] == ["rotated"]
        assert (await svc.decrypt(ADMIN.identity, "rotated", old)).result == b"before"
    finally:
        await svc.close()
    assert assert_consistent(data / "kubekms.db") == {"rotated": 3, "original": 2}
    conn = sqlite3.connect(data / "kubekms.db")
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()
