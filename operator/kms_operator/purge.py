"""Purging the material of deleted keys once their recovery window is over.

A KmsKey deleted with deletionPolicy Delete leaves its Secret labelled `kubekms.io/deleted` with
the end of the window in `kubekms.io/purge-at` (see `deletion`). Every check interval this task
lists those Secrets and deletes each one whose time has come, with the resourceVersion it read
as a precondition: a key restored in the meantime (adoption removes the labels in a guarded
patch) changed the Secret, so the delete is refused and the restored material stays. Each purge
is logged and recorded as an Event on the Secret.

Security property: nothing is unsealed; the Secret is deleted whole, and only one that still
carries the deletion marks exactly as they were read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kms_kube import layout as m
from kms_kube.client import Conflict, KubeError
from kms_kube.layout import secrets_path
from kms_operator import clock, events
from kms_operator.context import Runtime

log = logging.getLogger("kubekms.operator.purge")


async def run(rt: Runtime) -> None:
    """Purge expired material every check interval until cancelled; never ends the operator."""
    events.post_directly(rt.api)  # outside Kopf's handlers: no Kopf event queue here
    while True:
        try:
            await purge_expired(rt)
        except KubeError as e:
            log.warning("could not look for deleted keys to purge: %s", e)
        await asyncio.sleep(rt.settings.check_interval)


async def purge_expired(rt: Runtime) -> list[str]:
    """Delete every deleted key's Secret whose purge time has passed; returns their names."""
    path = secrets_path(rt.settings.namespace)
    found, _ = await rt.api.list_all(path, {"labelSelector": f"{m.DELETED}=true"})
    now, purged = clock.now(), []
    for secret in found:
        meta = secret.get("metadata") or {}
        due = m.parse_time(m.annotations_of(secret).get(m.PURGE_AT))
        if m.labels_of(secret).get(m.DELETED) != "true" or due is None or due > now:
            continue
        name = str(meta.get("name"))
        try:
            target = secrets_path(rt.settings.namespace, name)
            gone = await rt.api.delete(target, str(meta["resourceVersion"]))
        except Conflict:
            log.info("Secret %s changed (restored?) since it was read; not purged", name)
            continue
        if gone:
            purged.append(name)
            key_id = m.key_id_of(secret)
            log.info("Purged Secret %s of deleted key %s (its recovery window ended)", name, key_id)
            message = f"Purged the material of deleted key {key_id}: its recovery window ended"
            await events.info(_about(secret, rt.settings.namespace), "MaterialPurged", message)
    return purged


def _about(secret: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The Secret as an Event's involved object (list items carry no apiVersion and kind)."""
    meta = secret.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid")}}
