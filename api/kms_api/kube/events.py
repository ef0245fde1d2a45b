"""Warning Events on KmsKeys from the API: what a namespace's owners should see with
`kubectl describe kmsk` (today: a key version nearing its AES-GCM nonce budget, see
kms_core.gcmusage).

Events are posted in the key's own namespace about the KmsKey object (kind, name, UID), by the
component `kubekms-api`; a failure to post is logged and never affects a request.
Security property: messages carry key ids, versions and counts only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from kms_kube import layout
from kms_kube.client import JsonDict, KubeClient, KubeError

log = logging.getLogger("kms_api.kube.store")
COMPONENT = "kubekms-api"


def warning(obj: JsonDict, reason: str, message: str) -> JsonDict:
    """A core/v1 Warning Event about the KmsKey `obj`."""
    meta = obj.get("metadata") or {}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}", "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": layout.API_VERSION, "kind": layout.KIND, "namespace": meta.get("namespace"),
            "name": meta.get("name"), "uid": meta.get("uid"),
        },
        "type": "Warning",
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def post(client: KubeClient, event: JsonDict) -> None:
    namespace = str(event["metadata"]["namespace"])
    try:
        await client.create(f"/api/v1/namespaces/{namespace}/events", event)
    except KubeError as exc:
        log.warning("could not post a %s Event: %s", event.get("reason"), type(exc).__name__)


def schedule(loop: asyncio.AbstractEventLoop, client: KubeClient, event: JsonDict) -> None:
    """Post `event` on `loop` from any thread (the encrypting thread must not wait for it)."""
    loop.call_soon_threadsafe(lambda: loop.create_task(post(client, event)))
