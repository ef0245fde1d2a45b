"""Rotation of every key usage: on request (the annotation `kubekms.io/rotate`, any new value) and
on schedule (`spec.rotationPeriod`, once the current version is that old).

Each rotation is one JSON patch of the material Secret guarded by its resourceVersion: the new
`version-<n>` entry, its creation time (`kubekms.io/version-created`) and, for a request, the
request value it answers (`kubekms.io/rotation`). So a request is performed at most once, even
across a crash between the Secret write and the status write; and a scheduled rotation happens
exactly once per due time however many operators (replicas without leader election, a
restarted one) try: whether it is due is decided from the same Secret snapshot the patch is
guarded by, so of two racing operators one patch applies and the other gets a conflict, re-reads
and finds the rotation done. A process that was down for several periods rotates once: the next
due time is measured from the new version's creation, not from the missed due times.
A rotation whose Secret write the API server refuses (e.g. the Secret would exceed 1 MiB) surfaces
through `reconcile` as Degraded/ApiRejected, attempted a bounded number of times per request
(`rejections`); a new request value starts over.

Security property: the new material is minted and sealed in one call; only the sealed blob is
written.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timedelta
from typing import Any

from kms_core import material
from kms_core.metrics import KEY_ROTATIONS
from kms_kube import layout as m
from kms_kube.layout import Policy
from kms_operator import clock, events
from kms_operator.context import escape
from kms_operator.keycontext import KeyContext
from kms_operator.overdue import OVER_PERIOD, WITHIN_PERIOD

MANUAL = "manual"
SCHEDULED = "scheduled"


async def rotate(ctx: KeyContext, secret: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Perform a pending rotation request; returns the Secret and the handled request value."""
    requested = m.annotations_of(ctx.key).get(m.ROTATE)
    handled = (ctx.key.get("status") or {}).get("rotation")
    if not requested or requested == handled:
        return secret, handled
    if m.annotations_of(secret).get(m.ROTATION) == requested:
        return secret, requested  # performed before a crash; only the status is behind
    extra = {"op": "add", "path": f"/metadata/annotations/{escape(m.ROTATION)}", "value": requested}
    rotated = await _new_version(ctx, secret, MANUAL, extra)
    return rotated, requested


def due_at(secret: dict[str, Any], policy: Policy) -> datetime | None:
    """When the scheduled rotation is due: the current version's creation + the period."""
    found = m.versions(secret)
    if policy.rotation_period <= 0 or not found:
        return None
    made = m.version_times(secret).get(max(found))
    return None if made is None else made + timedelta(seconds=policy.rotation_period)


async def rotate_on_schedule(ctx: KeyContext, secret: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """Rotate when the rotation period says so (never a disabled key); returns the Secret."""
    overdue = ctx.rt.overdue
    due = due_at(secret, policy)
    now = clock.now()
    if due is None or due > now or ctx.spec.get("disabled"):
        overdue.set(ctx.ref, None)
        return secret
    # Counted as overdue until the rotation is stored (a refused or failed write leaves it so).
    late = now - due >= timedelta(seconds=policy.rotation_period)
    overdue.set(ctx.ref, OVER_PERIOD if late else WITHIN_PERIOD)
    rotated = await _new_version(ctx, secret, SCHEDULED)
    overdue.set(ctx.ref, None)
    return rotated


async def _new_version(
    ctx: KeyContext, secret: dict[str, Any], trigger: str, *extra: dict[str, Any]
) -> dict[str, Any]:
    key_id = ctx.key_id
    version = max(m.versions(secret)) + 1
    sealed = await asyncio.to_thread(material.mint, key_id, version, ctx.alg, ctx.rt.sealer)
    times = m.version_times(secret)
    times[version] = clock.now()
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": secret["metadata"]["resourceVersion"]},
        {"op": "add", "path": f"/data/{m.version_key(version)}", "value": base64.b64encode(sealed).decode()},
        {"op": "add", "path": f"/metadata/annotations/{escape(m.VERSION_CREATED)}",
         "value": m.version_times_value(times)},
        *extra,
    ]
    rotated = await ctx.rt.api.json_patch(ctx.secret_path, ops)
    KEY_ROTATIONS.labels(trigger=trigger).inc()
    ctx.logger.info("Rotated key %s to version %d (%s)", key_id, version, trigger)
    why = "the rotation period elapsed" if trigger == SCHEDULED else "requested"
    await events.info(ctx.key, "Rotated", f"Rotated key {key_id} to version {version} ({trigger}: {why})")
    return rotated
