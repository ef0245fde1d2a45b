"""Authorise before revealing: a caller without rights on a project learns nothing about its keys.

KeyService on a real SQLite store and a real root-key sealer, with an authorizer that allows some
projects and denies the rest. For a denied caller every key operation must answer the same
403 whatever the key's state (enabled or disabled, its usage, exportable or not, protected or
not), and a missing key stays 404. Bulk export runs Infisical's checks (disabled -> same project
-> exportable) only after the caller may export every key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from fixtures.callers import Caller
from kms_api.http.error_replies import status_of
from kms_core.errors import BadRequest, KmsError, NotFound, PermissionDenied
from kms_core.model import Algorithm, Key, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.outcome import failure_of
from kms_core.policy import Action
from kms_core.service import KeyService
from kms_core.stores.base import ListQuery

MINE, THEIRS = "mine", "theirs"
MISSING = "00000000-0000-4000-8000-000000000000"


class ProjectAuthorizer(Caller):
    """Allowed every action in `allowed` projects, denied the rest; each check recorded in order."""

    def __init__(self, *allowed: str) -> None:
        super().__init__()
        self.allowed = set(allowed)

    def decide(self, action: Action, project_id: str, key_name: str | None) -> None:
        if project_id not in self.allowed:
            raise PermissionDenied(action)


ADMIN = ProjectAuthorizer(MINE, THEIRS)



Operation = Callable[[KeyService, str, ProjectAuthorizer], Awaitable[object]]

# Every operation on one key id, with arguments that would pass schema validation.
OPERATIONS: dict[str, Operation] = {
    "get": lambda s, k, a: s.get(a.identity, k),
    "update": lambda s, k, a: s.update(a.identity, k, description="x"),
    "delete": lambda s, k, a: s.delete(a.identity, k),
    "rotate": lambda s, k, a: s.rotate(a.identity, k),
    "encrypt": lambda s, k, a: s.encrypt(a.identity, k, b"x"),
    "decrypt": lambda s, k, a: s.decrypt(a.identity, k, b"\0" * 40),
    "public-key": lambda s, k, a: s.public_key(a.identity, k),
    "signing-algorithms": lambda s, k, a: s.signing_algorithms(a.identity, k),
    "sign": lambda s, k, a: s.sign(a.identity, k, SigningAlgorithm.ECDSA_SHA_256, b"m", False),
    "verify": lambda s, k, a: s.verify(a.identity, k, SigningAlgorithm.ECDSA_SHA_256, b"m", b"sig", False),
    "generate-mac": lambda s, k, a: s.generate_mac(a.identity, k, b"m"),
    "verify-mac": lambda s, k, a: s.verify_mac(a.identity, k, b"m", b"mac"),
    "derive-shared-secret": lambda s, k, a: s.derive_shared_secret(a.identity, k, b"peer"),
    "export": lambda s, k, a: s.export_private_key(a.identity, k),
    "bulk-export": lambda s, k, a: s.bulk_export(a.identity, [k]),
}

# Keys of every kind a denied caller must not be able to tell apart.
SPECS = {
    "aes": KeySpec(project_id=THEIRS, name="aes"),
    "aes-disabled": KeySpec(project_id=THEIRS, name="aes-off"),
    "aes-exportable-protected": KeySpec(
        project_id=THEIRS, name="aes-open", is_exportable=True, has_delete_protection=True
    ),
    "ec-sign": KeySpec(
        project_id=THEIRS, name="ec", key_usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256
    ),
    "hmac-disabled": KeySpec(
        project_id=THEIRS, name="mac", key_usage=KeyUsage.GENERATE_VERIFY_MAC,
        algorithm=Algorithm.HMAC_SHA_256,
    ),
}


async def _keys(svc: KeyService) -> dict[str, Key]:
    keys = {label: (await svc.create(ADMIN.identity, spec)).result for label, spec in SPECS.items()}
    for label in ("aes-disabled", "hmac-disabled"):
        keys[label] = (await svc.update(ADMIN.identity, keys[label].id, is_disabled=True)).result
    return keys


Outcome = tuple[str, int, str]  # exception class, HTTP status, message


async def _outcome(op: Operation, svc: KeyService, key_id: str, authz: ProjectAuthorizer) -> Outcome:
    try:
        await op(svc, key_id, authz)
    except KmsError as exc:
        return type(exc).__name__, status_of(exc)[0], exc.message
    return "ok", 200, ""


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_a_denied_caller_gets_one_answer_whatever_the_key_state(
    svc: KeyService, operation: str
) -> None:
    keys = await _keys(svc)
    op = OPERATIONS[operation]
    outsider = ProjectAuthorizer(MINE)
    outcomes = {label: await _outcome(op, svc, key.id, outsider) for label, key in keys.items()}
    action = {"get": "read", "update": "edit", "public-key": "read", "signing-algorithms": "read",
              "export": "export-private-key", "bulk-export": "export-private-key"}.get(operation, operation)
    expected = ("PermissionDenied", 403, f"You are not allowed to {action} on cmek")
    assert set(outcomes.values()) == {expected}, outcomes
    # Permission was the first thing asked about each key, and nothing changed.
    assert {c[1] for c in outsider.calls} == {THEIRS}
    for label, key in keys.items():
        assert (await svc.get(ADMIN.identity, key.id)).result == key, label
    # A missing key is still 404 (ids are random UUIDs: a 403 only confirms an id the caller holds).
    status = (await _outcome(op, svc, MISSING, outsider))[1]
    assert status == 404


async def test_the_permitted_caller_still_gets_each_specific_answer(svc: KeyService) -> None:
    """The checks that moved behind the permission still run, in the same relative order."""
    keys = await _keys(svc)
    assert await _outcome(OPERATIONS["encrypt"], svc, keys["aes-disabled"].id, ADMIN) == (
        "BadRequest", 400, "Key is disabled",
    )
    assert (await _outcome(OPERATIONS["sign"], svc, keys["aes"].id, ADMIN))[2] == (
        "Unsupported key type, expected sign-verify but got encrypt-decrypt"
    )
    assert (await _outcome(OPERATIONS["generate-mac"], svc, keys["hmac-disabled"].id, ADMIN))[2] == (
        "Key is disabled"
    )
    assert (await _outcome(OPERATIONS["export"], svc, keys["aes"].id, ADMIN))[2] == (
        "You are not allowed to export this key"
    )
    assert (await _outcome(OPERATIONS["delete"], svc, keys["aes-exportable-protected"].id, ADMIN))[2] == (
        "Key is protected from deletion. Disable delete protection to delete it."
    )
    # Disabled keys are still readable and updatable (that is how they are re-enabled).
    assert (await svc.get(ADMIN.identity, keys["aes-disabled"].id)).result.is_disabled is True


async def test_get_by_name_asks_before_looking(svc: KeyService) -> None:
    await svc.create(ADMIN.identity, KeySpec(project_id=THEIRS, name="exists"))
    outsider = ProjectAuthorizer(MINE)
    for name in ("exists", "does-not-exist"):
        with pytest.raises(PermissionDenied):
            await svc.get_by_name(outsider.identity, THEIRS, name)
    assert outsider.calls == [("read", THEIRS, "exists"), ("read", THEIRS, "does-not-exist")]
    with pytest.raises(NotFound):
        await svc.get_by_name(outsider.identity, MINE, "does-not-exist")


async def test_bulk_export_authorises_every_key_before_any_other_check(svc: KeyService) -> None:
    async def create(project: str, name: str, exportable: bool = True) -> Key:
        spec = KeySpec(project_id=project, name=name, is_exportable=exportable)
        return (await svc.create(ADMIN.identity, spec)).result

    mine = await create(MINE, "a")
    mine_locked = await create(MINE, "locked", exportable=False)
    theirs = await create(THEIRS, "b")
    theirs_off = await create(THEIRS, "off")
    await svc.update(ADMIN.identity, theirs_off.id, is_disabled=True)
    member = ProjectAuthorizer(MINE)

    # Infisical would say "All keys must belong to the same project" (or "is disabled") here,
    # telling a non-member where the foreign key lives and what state it is in.
    for ids in ([mine.id, theirs.id], [mine.id, theirs_off.id], [theirs_off.id]):
        with pytest.raises(PermissionDenied, match=r"^You are not allowed to export-private-key on cmek$"):
            await svc.bulk_export(member.identity, ids)
    # Each key is authorised with its own project and name.
    assert ("export-private-key", THEIRS, "b") in member.calls
    assert ("export-private-key", MINE, "a") in member.calls

    # Allowed on everything: Infisical's relative order, disabled -> same project -> exportable.
    with pytest.raises(BadRequest, match=r'is disabled$'):
        await svc.bulk_export(ADMIN.identity, [mine_locked.id, mine.id, theirs_off.id])
    with pytest.raises(BadRequest, match=r"^All keys must belong to the same project$"):
        await svc.bulk_export(ADMIN.identity, [mine_locked.id, theirs.id])
    with pytest.raises(BadRequest, match=r"^You are not allowed to export this key$"):
        await svc.bulk_export(member.identity, [mine.id, mine_locked.id])
    exported = (await svc.bulk_export(member.identity, [mine.id])).result
    assert [e.key.id for e in exported] == [mine.id] and len(exported[0].private_key) == 32

    # Missing ids are reported before anything is asked: they are the caller's own input.
    outsider = ProjectAuthorizer()
    with pytest.raises(NotFound, match=f"^Keys not found for IDs: {MISSING}$"):
        await svc.bulk_export(outsider.identity, [theirs.id, MISSING])
    assert outsider.calls == []


async def test_outcomes_and_failures_name_what_the_operation_concerned(svc: KeyService) -> None:
    """The binding audits and labels from these: the key used and the project asked about."""
    keys = await _keys(svc)
    aes, mac = keys["aes"], keys["hmac-disabled"]
    done = await svc.encrypt(ADMIN.identity, aes.id, b"x")
    assert (done.key, done.project) == (aes, THEIRS)
    listed = await svc.list(ADMIN.identity, ListQuery(project_id=THEIRS))
    assert (listed.key, listed.project) == (None, THEIRS)

    # Denied: the project asked about, no key (nothing about it is revealed past the check).
    with pytest.raises(PermissionDenied) as denied:
        await svc.encrypt(ProjectAuthorizer(MINE).identity, aes.id, b"x")
    context = failure_of(denied.value)
    assert context is not None and (context.project, context.key) == (THEIRS, None)
    # Disabled: still only the project.
    with pytest.raises(BadRequest, match=r"^Key is disabled$") as disabled:
        await svc.generate_mac(ADMIN.identity, mac.id, b"m")
    context = failure_of(disabled.value)
    assert context is not None and (context.project, context.key) == (THEIRS, None)
    # Past every check but usage: the key it failed on.
    with pytest.raises(BadRequest, match=r"^Unsupported key type") as usage:
        await svc.sign(ADMIN.identity, aes.id, SigningAlgorithm.ECDSA_SHA_256, b"m", False)
    context = failure_of(usage.value)
    assert context is not None and context.key == aes and context.result is None
    # A missing key: nothing was established.
    with pytest.raises(NotFound) as missing:
        await svc.encrypt(ADMIN.identity, MISSING, b"x")
    assert failure_of(missing.value) is None
