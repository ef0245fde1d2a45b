"""A KmsKey's lifecycle policy: the spec's rotation period and version bounds, checked with
kms_core.lifecycle's rules (OpenBao Transit's) before they are put in force, and trimming.

The policy in force is `status.policy` (the API enforces that, never the raw spec): a spec value
the rules refuse — a bound above the current version, an encryption bound under the decryption
bound, a decryption bound under trimmed versions — leaves the previous policy in force and makes
the key Degraded/PolicyRefused with the rule's message (and one Warning Event); the key stays
Ready, so a typo in a bound never takes a key out of service. The trimming bound in force is the
one recorded in the material Secret (`kubekms.io/min-available-version`), next to the material.

Trimming (`spec.minAvailableVersion`) deletes the `version-<n>` entries below it from the Secret
in one resourceVersion-guarded patch that also records the new bound, and only when
`kms_core.lifecycle.check_trim` allows it (decryption and encryption already bounded at or above
it). It is irreversible: the sealed material is gone.

Security property: nothing is unsealed; trimming only removes sealed blobs nobody may use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kms_core import lifecycle
from kms_core.errors import BadRequest
from kms_core.model import Algorithm, Key, KeyUsage
from kms_kube import layout as m
from kms_kube.layout import Policy
from kms_operator import events
from kms_operator.context import escape
from kms_operator.keycontext import KeyContext

REFUSED = "PolicyRefused"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy to put in force, and the refusal message when the spec's was not accepted."""

    policy: Policy
    refusal: str | None = None


def as_key(policy: Policy, version: int, usage: KeyUsage, alg: Algorithm, disabled: bool = False) -> Key:
    """A core key record carrying `policy` at `version`, for kms_core.lifecycle's rules (the
    identity fields are not read by them)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return Key(
        id="", name="", description=None, is_disabled=disabled, org_id="", project_id="", key_usage=usage,
        algorithm=alg, version=version, is_exportable=False, has_delete_protection=False,
        created_at=epoch, updated_at=epoch, rotation_period=policy.rotation_period,
        min_decryption_version=policy.min_decryption_version,
        min_encryption_version=policy.min_encryption_version,
        min_available_version=policy.min_available_version,
    )


def decide(key: dict[str, Any], secret: dict[str, Any], usage: KeyUsage, alg: Algorithm) -> Decision:
    """The spec's policy if kms_core.lifecycle accepts it as a change of the policy in force."""
    spec = key.get("spec") or {}
    current = max(m.versions(secret))
    in_force = replace(Policy.of_status(key.get("status")), min_available_version=m.min_available(secret))
    try:
        period = spec.get("rotationPeriod")
        change = lifecycle.PolicyChange(
            rotation_period=lifecycle.parse_duration(period) if period else 0,
            min_decryption_version=int(spec.get("minDecryptionVersion", 1)),
            min_encryption_version=int(spec.get("minEncryptionVersion", 0)),
        )
        wanted, _warnings = lifecycle.apply(as_key(in_force, current, usage, alg), change)
    except (BadRequest, ValueError, TypeError) as e:
        return Decision(in_force, f"the spec's rotation period or version bounds were not applied: {e}")
    return Decision(replace(
        in_force,
        rotation_period=wanted.rotation_period,
        min_decryption_version=wanted.min_decryption_version,
        min_encryption_version=wanted.min_encryption_version,
    ))


async def trim(
    ctx: KeyContext, secret: dict[str, Any], decision: Decision
) -> tuple[dict[str, Any], Decision]:
    """Destroy the versions below `spec.minAvailableVersion` when the rules allow it."""
    wanted = ctx.spec.get("minAvailableVersion")
    policy = decision.policy
    if not isinstance(wanted, int) or wanted <= policy.min_available_version:
        return secret, decision
    current = max(m.versions(secret))
    try:
        lifecycle.check_trim(as_key(policy, current, ctx.usage, ctx.alg), wanted)
    except BadRequest as e:
        refusal = f"minAvailableVersion {wanted} was not applied (nothing was trimmed): {e}"
        return secret, Decision(policy, decision.refusal or refusal)
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": secret["metadata"]["resourceVersion"]},
        {"op": "add", "path": f"/metadata/annotations/{escape(m.MIN_AVAILABLE)}", "value": str(wanted)},
    ]
    destroyed = sorted(v for v in m.versions(secret) if v < wanted)
    ops += [{"op": "remove", "path": f"/data/{m.version_key(v)}"} for v in destroyed]
    trimmed = await ctx.rt.api.json_patch(ctx.secret_path, ops)
    ctx.logger.info("Trimmed key %s: destroyed versions %s", ctx.key_id, destroyed)
    note = f"Destroyed the material of versions below {wanted} of key {ctx.key_id} (irreversible)"
    await events.info(ctx.key, "Trimmed", note)
    return trimmed, Decision(replace(policy, min_available_version=wanted), decision.refusal)


def versions_status(
    secret: dict[str, Any], policy: Policy, usage: KeyUsage, alg: Algorithm
) -> list[dict[str, Any]]:
    """`status.versions`: every version from 1 to the current one, with its creation time and
    its state under the policy in force."""
    current = max(m.versions(secret))
    record = as_key(policy, current, usage, alg)
    times = m.version_times(secret)
    out: list[dict[str, Any]] = []
    for version in range(1, current + 1):
        entry: dict[str, Any] = {"version": version, "state": lifecycle.version_state(record, version).value}
        if version in times:
            entry["createdAt"] = m.timestamp(times[version])
        out.append(entry)
    return out
