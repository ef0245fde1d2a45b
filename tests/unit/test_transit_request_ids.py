"""Transit's `request_id` (kms_api.transit.envelope): a random version-4 UUID, as Vault's, unique
across pool refills and different in a forked worker."""

from __future__ import annotations

import os
import uuid

from kms_api.transit.envelope import _IDS, wrap


def test_every_id_is_a_version_4_uuid_and_none_repeats() -> None:
    ids = [wrap(None)["request_id"] for _ in range(1000)]  # several pool refills
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_does_not_replay_the_parent_pool() -> None:
    _IDS.next()  # the pool holds unused ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next id and leave at once
        os.write(write, _IDS.next().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert uuid.UUID(child).version == 4
    assert child != _IDS.next()
