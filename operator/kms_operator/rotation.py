"""Rotation of symmetric keys, requested by the annotation `kubekms.io/rotate` (any new value).

The new version and the request it answers (`kubekms.io/rotation` on the Secret) are written in one
patch guarded by the Secret's resourceVersion: a request is performed at most once, even across a
crash between the Secret write and the status write.
A rotation whose Secret write the API server refuses (e.g. the Secret would exceed 1 MiB) surfaces
through `reconcile` as Degraded/ApiRejected, attempted a bounded number of times per request
(`rejections`); a new request value starts over.

Security property: the new material is minted and sealed in one call; only the sealed blob is
written.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from kms_core import material
from kms_core.algorithms import is_symmetric
from kms_core.model import Algorithm, KeyUsage
from kms_kube import layout as m
from kms_kube.layout import secrets_path
from kms_operator import events
from kms_operator.context import Runtime, escape


async def rotate(
    rt: Runtime,
    key: dict[str, Any],
    secret: dict[str, Any],
    key_id: str,
    usage: KeyUsage,
    alg: Algorithm,
    logger: logging.Logger | Any,
) -> tuple[dict[str, Any], str | None]:
    """Perform a pending rotation request; returns the Secret and the handled request value."""
    requested = m.annotations_of(key).get(m.ROTATE)
    handled = (key.get("status") or {}).get("rotation")
    if not requested or requested == handled:
        return secret, handled
    if usage != KeyUsage.ENCRYPT_DECRYPT or not is_symmetric(alg):
        await events.warn(
            key, "RotationUnsupported", f"Only symmetric encrypt-decrypt keys rotate; {alg.value} keys do not"
        )
        return secret, requested
    if m.annotations_of(secret).get(m.ROTATION) == requested:
        return secret, requested  # performed before a crash; only the status is behind
    version = max(m.versions(secret)) + 1
    sealed = await asyncio.to_thread(material.mint, key_id, version, alg, rt.sealer)
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": secret["metadata"]["resourceVersion"]},
        {"op": "add", "path": f"/data/{m.version_key(version)}", "value": base64.b64encode(sealed).decode()},
        {"op": "add", "path": f"/metadata/annotations/{escape(m.ROTATION)}", "value": requested},
    ]
    rotated = await rt.api.json_patch(secrets_path(rt.settings.namespace, m.secret_name(key_id)), ops)
    logger.info("Rotated key %s to version %d", key_id, version)
    await events.info(key, "Rotated", f"Rotated key {key_id} to version {version}")
    return rotated, requested
