"""OpenBao and KubeKMS answer the same script of Transit requests alike (tests/transit/script.py).

Status codes, error texts, the envelope and the shape, JSON types and values of every `data`
field are compared; values random by nature are compared by format and by round trip.
"""

from __future__ import annotations

import pytest
from differential import Reply, Session, Step, compare, run
from script import script
from script_backup import backup_steps
from script_crypto import crypto_steps
from script_derived import derived_signing_steps
from script_import import test_openbao_and_kubekms_agree_on_import  # noqa: F401  (collected here)
from script_lifecycle import lifecycle_script
from script_signing import signing_steps
from servers import KubeKms, OpenBao

pytestmark = pytest.mark.integration


def test_the_script_is_long_enough() -> None:
    assert len(script()) >= 150


def test_openbao_and_kubekms_agree(openbao: OpenBao, kubekms: KubeKms) -> None:
    steps = [*script(), *crypto_steps(), *signing_steps()]
    failures = run(steps, Session(openbao.url, openbao.token), Session(kubekms.url, kubekms.token))
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)


def test_openbao_and_kubekms_agree_on_the_key_lifecycle(openbao: OpenBao, kubekms: KubeKms) -> None:
    assert len(lifecycle_script()) >= 60
    steps = [*lifecycle_script(), *backup_steps()]
    failures = run(steps, Session(openbao.url, openbao.token), Session(kubekms.url, kubekms.token))
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)


def test_openbao_and_kubekms_agree_on_derived_ed25519_keys(openbao: OpenBao, kubekms: KubeKms) -> None:
    steps = derived_signing_steps()
    assert len(steps) >= 35
    failures = run(steps, Session(openbao.url, openbao.token), Session(kubekms.url, kubekms.token))
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)


def test_the_comparison_sees_every_kind_of_difference() -> None:
    """The harness can fail: a status, an error text, a missing field, a JSON type, a value and a
    random field in the wrong format are each reported; random values in format are not."""
    step = Step("POST", "transit/encrypt/k")
    same = Reply(200, {"data": {"ciphertext": "vault:v1:AAAA", "key_version": 1}})
    assert compare(step, same, Reply(200, {"data": {"ciphertext": "vault:v1:BBBB", "key_version": 1}})) == []
    cases = [
        Reply(400, same.body),
        Reply(200, {"data": {"ciphertext": "vault:v1:AAAA"}}),
        Reply(200, {"data": {"ciphertext": "vault:v1:AAAA", "key_version": "1"}}),
        Reply(200, {"data": {"ciphertext": "vault:v1:AAAA", "key_version": 2}}),
        Reply(200, {"data": {"ciphertext": "AAAA", "key_version": 1}}),
    ]
    for ours in cases:
        assert compare(step, same, ours), ours
    assert compare(step, Reply(400, {"errors": ["a"]}), Reply(400, {"errors": ["b"]}))
