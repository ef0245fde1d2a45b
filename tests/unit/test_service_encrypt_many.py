"""`KeyService.encrypt_many`: a batch under one key pays one lookup and one policy decision,
each item fails on its own, and what it returns decrypts like `encrypt`'s ciphertexts."""

from __future__ import annotations

import pytest

from fixtures.callers import Caller
from kms_core.batch import EncryptItem
from kms_core.errors import BadRequest, PermissionDenied
from kms_core.model import Algorithm, KeySpec, KeyUsage
from kms_core.policy import Action
from kms_core.service import KeyService


class Member(Caller):
    """May manage and use keys, not sign: a denied action shows the policy was asked."""

    def decide(self, action: Action, project: str, key_name: str | None) -> None:
        if action is Action.SIGN:
            raise PermissionDenied(action)



async def test_items_fail_alone_and_the_rest_decrypt(svc: KeyService) -> None:
    caller = Member()
    key = (await svc.create(caller.identity, KeySpec(project_id="p", name="orders"))).result
    await svc.rotate(caller.identity, key.id)
    caller.calls.clear()
    items = [
        EncryptItem(b"latest"),
        EncryptItem(b"first", version=1),
        EncryptItem(b"future", version=9),  # above the latest version: this item's refusal
        EncryptItem(b"bound", aad=b"order-7"),
    ]
    results = (await svc.encrypt_many(caller.identity, key.id, items)).result
    assert caller.calls == [(Action.ENCRYPT, "p", "orders")]  # one decision for the batch
    assert isinstance(results[2], BadRequest) and "higher than the latest" in results[2].message
    sealed = [r for r in results if isinstance(r, bytes)]
    assert len(sealed) == 3
    assert (await svc.decrypt(caller.identity, key.id, sealed[0])).result == b"latest"
    assert (await svc.decrypt(caller.identity, key.id, sealed[1])).result == b"first"
    assert sealed[1].endswith(b"v01") and not sealed[0].endswith(b"v01")  # version 1 vs 2
    assert (await svc.decrypt(caller.identity, key.id, sealed[2], aad=b"order-7")).result == b"bound"


async def test_the_key_itself_failing_fails_the_batch(svc: KeyService) -> None:
    caller = Member()
    signing = KeySpec(
        project_id="p", name="signer", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256
    )
    key = (await svc.create(caller.identity, signing)).result
    with pytest.raises(BadRequest, match="expected encrypt-decrypt"):
        await svc.encrypt_many(caller.identity, key.id, [EncryptItem(b"x")])
    aes = (await svc.create(caller.identity, KeySpec(project_id="p", name="off"))).result
    await svc.update(caller.identity, aes.id, is_disabled=True)
    with pytest.raises(BadRequest, match="disabled"):
        await svc.encrypt_many(caller.identity, aes.id, [EncryptItem(b"x")])


async def test_a_grant_for_another_action_is_checked_again(svc: KeyService) -> None:
    caller = Member()
    await svc.create(caller.identity, KeySpec(project_id="p", name="orders"))
    grant = await svc.grant_by_name(caller.identity, Action.DECRYPT, "p", "orders")
    assert grant is not None
    caller.calls.clear()
    await svc.encrypt_many(caller.identity, grant, [EncryptItem(b"x"), EncryptItem(b"y")])
    assert caller.calls == [(Action.ENCRYPT, "p", "orders")]
