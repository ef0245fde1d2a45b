"""Property tests of the version policy: any sequence of rotate / set bounds / trim / encrypt /
decrypt (sign / verify, MAC / verify for the other usages) run against the real `KeyService` on a
real SQLite store with real crypto, and against a small pure-Python model of OpenBao's rules
written here independently of `kms_core.lifecycle`. Every result and every refusal agree: the
model predicts each plaintext, each validity flag, each version's state, and for each refusal
its error class, HTTP status and message.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.callers import POLICY, Caller
from kms_api.http.error_replies import status_of
from kms_core.errors import KmsError
from kms_core.lifecycle import PolicyChange
from kms_core.model import Algorithm, KeySpec, KeyUsage, SigningAlgorithm
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.service import KeyService
from kms_core.stores.sqlite import SqliteStore

ADMIN = Caller()
TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
USAGES = {
    KeyUsage.ENCRYPT_DECRYPT: Algorithm.AES_256_GCM,
    KeyUsage.SIGN_VERIFY: Algorithm.ECC_NIST_P256,
    KeyUsage.GENERATE_VERIFY_MAC: Algorithm.HMAC_SHA_256,
}


class Refused(Exception):
    """What the model predicts for a refused operation: error class name and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)
        self.kind, self.message = kind, message


def bad(message: str) -> Refused:
    return Refused("BadRequest", message)


def too_old() -> Refused:
    return Refused("VersionDisallowed", TOO_OLD)  # a BadRequest: 400 like the others


@dataclass
class Model:
    """One key's version policy, as OpenBao Transit documents it."""

    version: int = 1
    min_dec: int = 1
    min_enc: int = 0
    min_avail: int = 0
    period: int = 0
    produced: list[tuple[bytes, int, bytes]] = field(default_factory=list)  # (output, version, input)

    def rotate(self) -> None:
        self.version += 1

    def set_policy(self, period: int | None, dec: int | None, enc: int | None) -> None:
        new_period, new_dec, new_enc = self.period, self.min_dec, self.min_enc
        if period is not None:
            if 0 < period < 3600:
                raise bad("auto rotate period must be 0 to disable or at least an hour")
            new_period = period
        if dec is not None:
            if dec < 0:
                raise bad("min decryption version cannot be negative")
            dec = dec or 1
            if dec != self.min_dec and dec > self.version:
                raise bad(f"cannot set min decryption version of {dec}, latest key version is {self.version}")
            if dec != self.min_dec and dec < self.min_avail:
                raise bad("min decryption version should not be less then min available version")
            new_dec = dec
        if enc is not None:
            if enc < 0:
                raise bad("min encryption version cannot be negative")
            if enc != self.min_enc and enc > self.version:
                raise bad(f"cannot set min encryption version of {enc}, latest key version is {self.version}")
            if enc != self.min_enc and self.min_avail and enc < self.min_avail:
                raise bad("min encryption version should not be less than min available version")
            new_enc = enc
        if new_enc and new_enc < new_dec:
            raise bad(
                "cannot set min encryption/decryption values; min encryption version of "
                f"{new_enc} must be greater than or equal to min decryption version of {new_dec}"
            )
        self.period, self.min_dec, self.min_enc = new_period, new_dec, new_enc

    def trim(self, wanted: int) -> None:
        # OpenBao's path_trim.go switch, case by case (its "minmum" included).
        if wanted < self.min_avail:
            raise bad("minimum available version cannot be decremented")
        if self.min_enc == 0:
            raise bad("minimum available version cannot be set when minimum encryption version is not set")
        if self.min_dec == 0:
            raise bad("minimum available version cannot be set when minimum decryption version is not set")
        if wanted > self.min_enc:
            raise bad("minimum available version cannot be greater than minmum encryption version")
        if wanted > self.min_dec:
            raise bad("minimum available version cannot be greater than minimum decryption version")
        if wanted < 0:
            raise bad("minimum available version cannot be negative")
        if wanted == 0:
            raise bad("minimum available version should be positive")
        self.min_avail = wanted

    def producing_version(self, requested: int | None) -> int:
        """The version an encrypt / sign / MAC uses, or the refusal."""
        if not requested:
            return self.version
        if requested > self.version:
            raise bad("requested version for encryption is higher than the latest key version")
        if requested < self.min_enc:
            raise bad("requested version for encryption is less than the minimum encryption key version")
        if requested < max(self.min_dec, self.min_avail, 1):
            raise too_old()
        return requested

    def usable(self, version: int) -> bool:
        return version >= max(self.min_dec, self.min_avail, 1)

    def states(self) -> list[tuple[int, str]]:
        """Every stored version, newest first, with its state (trimmed ones are gone)."""
        out = []
        for v in range(self.version, max(self.min_avail, 1) - 1, -1):
            if v < self.min_dec:
                state = "disabled"
            elif v == self.version:
                state = "primary"
            elif v < self.min_enc:
                state = "decrypt-only"
            else:
                state = "enabled"
            out.append((v, state))
        return out


# An operation: (name, arguments). Versions range a little past the latest to hit every refusal.
# Mostly small: bounds only move once a few versions exist.
VERSION = st.one_of(st.integers(min_value=1, max_value=3), st.integers(min_value=-1, max_value=8))
OPS = st.one_of(
    st.tuples(st.just("rotate")),
    st.tuples(st.just("rotate")),
    st.tuples(st.just("policy"), st.one_of(st.none(), st.sampled_from([0, 1800, 3600, 86400])),
              st.one_of(st.none(), VERSION), st.one_of(st.none(), VERSION)),
    st.tuples(st.just("trim"), VERSION),
    st.tuples(st.just("produce"), st.one_of(st.none(), VERSION), st.binary(max_size=24)),
    st.tuples(st.just("consume"), st.integers(min_value=0, max_value=50)),
    st.tuples(st.just("consume_at"), st.integers(min_value=0, max_value=50), st.integers(1, 8)),
)  # fmt: skip


async def _real(svc: KeyService, key_id: str, usage: KeyUsage, op: tuple[Any, ...], model: Model) -> Any:
    """Run `op` on the service; return what the model is compared with."""
    who = ADMIN.identity
    name = op[0]
    if name == "rotate":
        return (await svc.rotate(who, key_id, any_usage=True)).key.version  # type: ignore[union-attr]
    if name == "policy":
        change = PolicyChange(op[1], min_decryption_version=op[2], min_encryption_version=op[3])
        key, _warnings = (await svc.set_policy(who, key_id, change)).result
        return (key.rotation_period, key.min_decryption_version, key.min_encryption_version)
    if name == "trim":
        return (await svc.trim(who, key_id, op[1])).result.min_available_version
    if name == "produce":
        version, data = op[1], op[2]
        if usage is KeyUsage.ENCRYPT_DECRYPT:
            return (await svc.encrypt(who, key_id, data, version)).result
        if usage is KeyUsage.SIGN_VERIFY:
            return (await svc.sign(who, key_id, SigningAlgorithm.ECDSA_SHA_256, data, False, version)).result
        return (await svc.generate_mac(who, key_id, data, version)).result
    output, _version, data = model.produced[op[1] % len(model.produced)]
    at = op[2] if name == "consume_at" else None
    if usage is KeyUsage.ENCRYPT_DECRYPT:
        return (await svc.decrypt(who, key_id, output)).result
    if usage is KeyUsage.SIGN_VERIFY:
        alg = SigningAlgorithm.ECDSA_SHA_256
        return (await svc.verify(who, key_id, alg, data, output, False, at)).result
    return (await svc.verify_mac(who, key_id, data, output, at)).result


def _expected(model: Model, usage: KeyUsage, op: tuple[Any, ...]) -> Any:
    """What the model predicts for `op` (raising Refused for a refusal); updates the model."""
    name = op[0]
    if name == "rotate":
        model.rotate()
        return model.version
    if name == "policy":
        model.set_policy(op[1], op[2], op[3])
        return (model.period, model.min_dec, model.min_enc)
    if name == "trim":
        model.trim(op[1])
        return model.min_avail
    if name == "produce":
        return model.producing_version(op[1])  # compared after the real call (outputs are random)
    _output, version, data = model.produced[op[1] % len(model.produced)]
    if usage is KeyUsage.ENCRYPT_DECRYPT:  # decryption reads the version from the ciphertext
        if not model.usable(version):
            raise too_old()
        return data
    at = op[2] if name == "consume_at" else None
    if at is None:  # every allowed version is tried
        return model.usable(version)
    if not model.usable(at):
        raise too_old()
    return at == version and at <= model.version


async def _run(usage: KeyUsage, ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sealer = RootKeySealer(os.urandom(32))
        svc = KeyService(SqliteStore.open(Path(tmp), sealer.kek_id), sealer, POLICY)
        try:
            key = (await svc.create(ADMIN.identity, KeySpec("p", "k", usage, USAGES[usage]))).result
            model = Model()
            for step, op in enumerate(ops):
                if op[0] in ("consume", "consume_at") and not model.produced:
                    continue
                where = f"step {step}: {op!r} on {model!r}"
                try:
                    expected: Any = _expected(model, usage, op)
                except Refused as refused:
                    expected = refused
                try:
                    got: Any = await _real(svc, key.id, usage, op, model)
                except KmsError as exc:
                    assert isinstance(expected, Refused), f"{where}: refused {exc!r}, model says {expected!r}"
                    assert (type(exc).__name__, str(exc)) == (expected.kind, expected.message), where
                    assert status_of(exc) == (400, "BadRequest"), where
                    continue
                assert not isinstance(expected, Refused), f"{where}: model refuses {expected.message!r}"
                if op[0] == "produce":
                    model.produced.append((got, expected, op[2]))
                else:
                    assert got == expected, where
                infos = (await svc.versions(ADMIN.identity, key.id)).result[1]
                assert [(v, str(state)) for v, _at, state in infos] == model.states(), where
        finally:
            await svc.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usage=st.sampled_from(list(USAGES)), ops=st.lists(OPS, min_size=1, max_size=30))
def test_the_service_and_the_model_agree_on_every_result_and_refusal(
    usage: KeyUsage, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_run(usage, ops))


def test_the_model_is_not_vacuous() -> None:
    """A sequence that exercises rotation, bounds, trimming and a refused old ciphertext."""
    ops = [("produce", None, b"one"), ("rotate",), ("produce", None, b"two"), ("rotate",),
           ("policy", None, 2, 3), ("trim", 2), ("consume", 0), ("consume", 1),
           ("produce", 1, b"x"), ("produce", 4, b"x"), ("trim", 1)]  # fmt: skip
    model = Model()
    outcomes = []
    for op in ops:
        try:
            result = _expected(model, KeyUsage.ENCRYPT_DECRYPT, op)
            if op[0] == "produce":
                model.produced.append((b"", result, op[2]))
            outcomes.append(result)
        except Refused as refused:
            outcomes.append(refused.message)
    assert outcomes[6] == TOO_OLD and outcomes[7] == b"two"
    assert outcomes[8] == "requested version for encryption is less than the minimum encryption key version"
    assert outcomes[9] == "requested version for encryption is higher than the latest key version"
    assert outcomes[10] == "minimum available version cannot be decremented"
    asyncio.run(_run(KeyUsage.ENCRYPT_DECRYPT, ops))


def test_trim_refusals_come_in_openbao_order() -> None:
    """Where several trim checks fail at once, the first in OpenBao's order answers (checked
    against a real `bao`): a decrement before an unset encryption bound, the encryption bound
    before the decryption bound."""
    ops = [("trim", -1), ("rotate",), ("rotate",), ("policy", None, 2, 2), ("trim", 3),
           ("policy", None, 1, 2), ("trim", 2), ("trim", 0), ("policy", None, 2, None), ("trim", 2),
           ("trim", -1), ("trim", 1)]  # fmt: skip
    model = Model()
    outcomes = []
    for op in ops:
        try:
            outcomes.append(_expected(model, KeyUsage.ENCRYPT_DECRYPT, op))
        except Refused as refused:
            outcomes.append(refused.message)
    assert outcomes == [
        "minimum available version cannot be decremented",
        2, 3, (0, 2, 2),
        "minimum available version cannot be greater than minmum encryption version",
        (0, 1, 2),
        "minimum available version cannot be greater than minimum decryption version",
        "minimum available version should be positive",
        (0, 2, 2), 2,
        "minimum available version cannot be decremented",
        "minimum available version cannot be decremented",
    ]  # fmt: skip
    asyncio.run(_run(KeyUsage.ENCRYPT_DECRYPT, ops))


def test_a_raised_bound_applies_to_a_keyring_already_in_memory() -> None:
    """No trim or rotation in between to empty the keyring cache: raising the decryption bound
    alone must retire version 1 at once (the cache is keyed on the bounds too)."""
    for usage in USAGES:
        ops = [("produce", None, b"one"), ("rotate",), ("produce", None, b"two"), ("consume", 0),
               ("policy", None, 2, None), ("consume", 0), ("consume", 1), ("consume_at", 0, 1)]  # fmt: skip
        asyncio.run(_run(usage, ops))
