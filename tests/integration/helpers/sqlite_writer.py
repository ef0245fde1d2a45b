"""A separate OS process driving `SqliteStore`, for the concurrency and crash-safety tests.

Usage: sqlite_writer.py <mode> <data_dir> <kek_id> [args...]
  open                          wait for "go" on stdin, open, print "org <org_id>" or "mismatch"
  create <project> <prefix> <n> open, print "ready", wait for "go", create <prefix>-0..n-1;
                                prints "created <id> <name> <sealed hex>" or "dup <name>"
  rotate <key_id> <n>           open, print "ready", wait for "go", rotate n times (retrying on
                                conflict); prints "rotated <version> <sealed hex>"
  churn <project>               create keys and rotate them forever; prints "created <id> <hex>"
                                and "rotated <id> <version> <hex>"

Every line is printed and flushed only after the store call returned, i.e. after the commit was
acknowledged: the parent treats printed lines as the writes that must survive.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from kms_core.errors import BadRequest, DuplicateName, SealerMismatch
from kms_core.model import KeySpec
from kms_core.stores.sqlite import SqliteStore


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    say("ready")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")


async def create(store: SqliteStore, project: str, prefix: str, n: int) -> None:
    for i in range(n):
        name, sealed = f"{prefix}-{i}", os.urandom(48)
        try:
            key = await store.create(str(uuid.uuid4()), KeySpec(project, name), sealed)
        except DuplicateName:
            say(f"dup {name}")
        else:
            say(f"created {key.id} {name} {sealed.hex()}")


async def rotate(store: SqliteStore, key_id: str, n: int) -> None:
    done = 0
    while done < n:
        key = await store.get(key_id)
        assert key is not None
        sealed = os.urandom(48)
        try:
            key = await store.rotate(key_id, key.version, sealed)
        except BadRequest as exc:
            if "rotated concurrently" not in exc.message:
                raise
            continue
        say(f"rotated {key.version} {sealed.hex()}")
        done += 1


async def churn(store: SqliteStore, project: str) -> None:
    ids: list[str] = []
    while True:
        sealed = os.urandom(64)
        key = await store.create(str(uuid.uuid4()), KeySpec(project, uuid.uuid4().hex[:20]), sealed)
        ids.append(key.id)
        say(f"created {key.id} {sealed.hex()}")
        target = ids[len(ids) // 2]
        current = await store.get(target)
        assert current is not None
        sealed = os.urandom(64)
        rotated = await store.rotate(target, current.version, sealed)
        say(f"rotated {target} {rotated.version} {sealed.hex()}")


async def main(mode: str, data_dir: Path, kek_id: str, args: list[str]) -> None:
    if mode == "open":
        wait_for_go()
        try:
            store = SqliteStore.open(data_dir, kek_id)
        except SealerMismatch:
            say("mismatch")
            return
        say(f"org {await store.org_id()}")
        await store.close()
        return
    store = SqliteStore.open(data_dir, kek_id)
    try:
        if mode == "create":
            wait_for_go()
            await create(store, args[0], args[1], int(args[2]))
        elif mode == "rotate":
            wait_for_go()
            await rotate(store, args[0], int(args[1]))
        elif mode == "churn":
            await churn(store, args[0])
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4:]))
