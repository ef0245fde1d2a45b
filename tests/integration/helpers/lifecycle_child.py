"""A process that runs one lifecycle scheduler pass on a data dir and stops dead in the middle of
its rotation, for SIGKILL tests (tests/hardening/test_lifecycle_crash.py).

    python lifecycle_child.py DATA_DIR ROOT_KEY_B64 OFFSET_SECONDS PAUSE MARKER

PAUSE is where the pass freezes: `minted` (new material sealed, nothing written yet) or
`in-transaction` (the new version row inserted, the key row about to move, no COMMIT yet). At
that point the child creates MARKER and sleeps until killed. Everything else is the real
scheduler, service, store and sealer; the pause is this script's, never the product's.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path

from kms_core.schedule import LifecycleScheduler, utcnow
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.database import open_file
from kms_core.stores.sqlite import SqliteStore


class _Nobody:
    async def check(self, *args: object) -> None:
        raise AssertionError("the scheduler asks no policy")


def _freeze(marker: Path) -> None:
    marker.write_text("paused")
    while True:
        time.sleep(60)


class PausingSealer(RootKeySealer):
    """The real root-key sealer, frozen right after sealing a new version's material."""

    marker = Path()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        sealed = super().seal(plaintext, aad)
        _freeze(self.marker)
        return sealed


async def main() -> None:
    data_dir, root_key, offset, pause, marker = sys.argv[1:6]
    cls = PausingSealer if pause == "minted" else RootKeySealer
    PausingSealer.marker = Path(marker)
    sealer = cls(base64.b64decode(root_key))
    reader, writer, org_id = open_file(Path(data_dir), sealer.kek_id)
    if pause == "in-transaction":
        def trace(statement: str) -> None:
            if statement.startswith("UPDATE keys SET version"):
                _freeze(Path(marker))

        writer.set_trace_callback(trace)
    service = KeyService(SqliteStore(reader, writer, org_id), sealer, _Nobody())  # type: ignore[arg-type]
    shift = timedelta(seconds=float(offset))
    await LifecycleScheduler(service, clock=lambda: utcnow() + shift).run_once()
    print("finished")  # not reached when paused


if __name__ == "__main__":
    assert sqlite3.threadsafety >= 1
    asyncio.run(main())
