"""Request ids from pooled randomness (kms_api.http.random_pool): the Infisical routes' `req-` +
16 url-safe characters and Transit's version-4 UUID `request_id`, unique across pool refills and
fresh in a forked worker."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable

import orjson
import pytest

from kms_api.http.error_replies import new_request_id
from kms_api.http.random_pool import RandomPool
from kms_api.transit.envelope import request_id, wrap, wrapped

SHAPE = re.compile(r"req-[A-Za-z0-9_-]{16}")


def test_ids_have_the_documented_shape_and_never_repeat_across_refills() -> None:
    ids = [new_request_id() for _ in range(341 * 3 + 7)]  # three pool refills and a bit
    assert all(SHAPE.fullmatch(i) for i in ids), ids[:3]
    assert len(set(ids)) == len(ids)


def test_transit_ids_are_version_4_uuids_and_never_repeat() -> None:
    ids = [wrap(None)["request_id"] for _ in range(128 * 3 + 5)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)


def test_a_reset_pool_is_never_replayed_and_slices_never_straddle_fills() -> None:
    fills = iter(["aaaabbbb", "ccccdddd", "eeeeffff"])
    pool = RandomPool(lambda: next(fills), 4)
    assert [pool.take(), pool.take(), pool.take()] == ["aaaa", "bbbb", "cccc"]
    pool.reset()  # what a forked worker does (os.register_at_fork)
    assert pool.take() == "eeee"  # the rest of the second fill is never handed out
    with pytest.raises(ValueError, match="multiple"):
        RandomPool(lambda: "abcde", 4).take()


@pytest.mark.parametrize("make", [new_request_id, request_id])
def test_a_forked_child_draws_its_own_ids(make: Callable[[], str]) -> None:
    make()  # the parent has a pool with ids left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next id and leave at once
        os.write(write, make().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child and child != make()


@pytest.mark.parametrize(
    "data",
    [
        {"ciphertext": "vault:v1:abc=", "key_version": 1},
        {"batch_results": [{"error": "x", "reference": ""}]},
        None,
    ],
)
def test_the_pre_encoded_envelope_is_wrap_s_encoding(data: object) -> None:
    """`wrapped` writes the bytes `orjson.dumps(wrap(data))` would, keys in the same order."""
    body = wrapped(data, 400).body
    assert isinstance(body, bytes)
    parsed = orjson.loads(body)
    uuid.UUID(parsed["request_id"])
    assert body == orjson.dumps({**wrap(data), "request_id": parsed["request_id"]})
    assert wrapped(data, 400).status == 400
