"""`KeyService.grant_by_name`: a by-name dialect pays one policy decision per request, and a
grant is honoured only for the identity and action it was made for."""

from __future__ import annotations

import pytest

from fixtures.callers import Caller
from kms_core.errors import BadRequest, PermissionDenied
from kms_core.model import KeySpec
from kms_core.policy import Action
from kms_core.service import KeyService


class EncryptOnly(Caller):
    def decide(self, action: Action, project: str, key_name: str | None) -> None:
        if action not in (Action.ENCRYPT, Action.CREATE, Action.EDIT):
            raise PermissionDenied(action)



async def test_one_decision_for_many_operations(svc: KeyService) -> None:
    caller = EncryptOnly()
    key = (await svc.create(caller.identity, KeySpec(project_id="p", name="orders"))).result
    caller.calls.clear()
    grant = await svc.grant_by_name(caller.identity, Action.ENCRYPT, "p", "orders")
    assert grant is not None and grant.key.id == key.id
    for _ in range(5):
        assert (await svc.encrypt(caller.identity, grant, b"x")).result
    assert caller.calls == [(Action.ENCRYPT, "p", "orders")]  # once, for the grant
    assert await svc.grant_by_name(caller.identity, Action.ENCRYPT, "p", "missing") is None


async def test_a_grant_is_not_a_pass_for_another_action_or_identity(svc: KeyService) -> None:
    caller, other = EncryptOnly(), EncryptOnly()
    await svc.create(caller.identity, KeySpec(project_id="p", name="orders"))
    grant = await svc.grant_by_name(caller.identity, Action.ENCRYPT, "p", "orders")
    assert grant is not None
    caller.calls.clear()
    with pytest.raises(PermissionDenied):
        await svc.decrypt(caller.identity, grant, b"\0" * 40)  # checked again, and denied
    assert caller.calls == [(Action.DECRYPT, "p", "orders")]
    await svc.encrypt(other.identity, grant, b"x")  # another identity: decided for it
    assert other.calls == [(Action.ENCRYPT, "p", "orders")]
    with pytest.raises(PermissionDenied):
        await svc.grant_by_name(caller.identity, Action.SIGN, "p", "orders")


async def test_a_grant_still_sees_the_key_disabled_at_grant_time(svc: KeyService) -> None:
    caller = EncryptOnly()
    key = (await svc.create(caller.identity, KeySpec(project_id="p", name="orders"))).result
    await svc.update(caller.identity, key.id, is_disabled=True)
    grant = await svc.grant_by_name(caller.identity, Action.ENCRYPT, "p", "orders")
    assert grant is not None
    with pytest.raises(BadRequest, match="disabled"):
        await svc.encrypt(caller.identity, grant, b"x")
