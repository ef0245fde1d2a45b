"""Request ids: `req-` + 16 url-safe characters, unique across pool refills, fresh after a fork."""

from __future__ import annotations

import os
import re

from kms_api.http.error_replies import _RequestIds, new_request_id

SHAPE = re.compile(r"req-[A-Za-z0-9_-]{16}")


def test_ids_have_the_documented_shape_and_never_repeat_across_refills() -> None:
    ids = [new_request_id() for _ in range(341 * 3 + 7)]  # three pool refills and a bit
    assert all(SHAPE.fullmatch(i) for i in ids), ids[:3]
    assert len(set(ids)) == len(ids)


def test_a_reset_pool_is_never_replayed() -> None:
    ids = _RequestIds()
    first = [ids.next() for _ in range(5)]
    ids.reset()  # what a forked worker does (os.register_at_fork)
    assert not set(first) & {ids.next() for _ in range(400)}


def test_a_forked_child_draws_its_own_ids() -> None:
    new_request_id()  # the parent has a pool with ids left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert SHAPE.fullmatch(child) and child != new_request_id()
