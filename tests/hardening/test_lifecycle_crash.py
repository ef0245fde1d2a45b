"""SIGKILL in the middle of a scheduled rotation loses nothing and rotates once.

A child process runs the real scheduler on the data dir and freezes inside a rotation — after
the new material is minted and sealed, or inside the SQLite transaction after the new version's
row is written but before COMMIT — and is killed there. Then a real `kubekms-api` starts on the
same data dir with the same (injected) time: every key ends with exactly one new version, the
store is consistent, every old ciphertext decrypts, and each rotation is audited once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.api import ROOT_KEY
from fixtures.hardening import start_hardened
from integration.helpers.lifecycle import HOUR, audit_events, decrypts, seed, versions, wait_for
from integration.helpers.sqlite_processes import CORE, assert_consistent

CHILD = Path(__file__).resolve().parents[1] / "integration" / "helpers" / "lifecycle_child.py"
OFFSET = 2 * HOUR + 60


def _kill_mid_rotation(data_dir: Path, pause: str, marker: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CORE), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, str(CHILD), str(data_dir), ROOT_KEY, str(OFFSET), pause, str(marker)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the child never reached its pause"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("pause", ["minted", "in-transaction"])
async def test_a_rotation_killed_midway_completes_once_after_restart(tmp_path: Path, pause: str) -> None:
    data = tmp_path / "data"
    db = data / "kubekms.db"
    ciphertexts = await seed(data, 3)
    _kill_mid_rotation(data, pause, tmp_path / "paused")
    assert set(versions(db).values()) == {1}  # the killed rotation left nothing behind
    assert_consistent(db)
    env = {"KUBEKMS_TEST_HOOKS": "1", "KUBEKMS_TEST_CLOCK_OFFSET": str(OFFSET),
           "KUBEKMS_LIFECYCLE_INTERVAL": "0.05"}  # fmt: skip
    api = start_hardened(tmp_path, env=env)
    try:
        await wait_for(lambda: min(versions(db).values()) >= 2, what="the rotation after restart")
        await asyncio.sleep(0.5)  # ten more passes at the same injected time
        assert set(versions(db).values()) == {2}
    finally:
        api.stop()
    assert_consistent(db)
    events = audit_events(api.logs(), event_type="rotate-cmek")
    assert sorted(e["keyId"] for e in events) == sorted(ciphertexts)
    await decrypts(data, ciphertexts)
