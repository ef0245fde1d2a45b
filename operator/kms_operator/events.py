"""Kubernetes Events about a KmsKey, from Kopf handlers and from the operator's own background tasks.

Inside a Kopf handler, events go through Kopf's poster (queued and retried by Kopf). The Secret
watch reconciles outside any handler, where Kopf has no event queue: a task that called
`post_directly` (and every task it starts) posts its events with the operator's own client
instead, in the shape Kopf uses. Events are auxiliary: a failed direct post is logged at WARNING
and never fails the reconciliation.

Security property: messages name keys, Secrets and reasons, never material; nothing here logs a
request body.
"""

from __future__ import annotations

import datetime
import logging
from contextvars import ContextVar
from typing import Any

import kopf

from kms_kube.client import KubeClient, KubeError
from kms_operator.context import ref

COMPONENT = "kubekms-operator"
_MAX_MESSAGE = 1024  # what kube-apiserver accepts for an Event message

_direct: ContextVar[KubeClient | None] = ContextVar("kubekms_direct_events", default=None)
log = logging.getLogger("kubekms.operator.events")


def post_directly(api: KubeClient) -> None:
    """From now on, this task and the tasks it starts post events with `api`, not through Kopf."""
    _direct.set(api)


async def info(key: dict[str, Any], reason: str, message: str) -> None:
    await _post(key, "Normal", reason, message)


async def warn(key: dict[str, Any], reason: str, message: str) -> None:
    await _post(key, "Warning", reason, message)


async def _post(key: dict[str, Any], kind: str, reason: str, message: str) -> None:
    api = _direct.get()
    if api is None:
        post = kopf.info if kind == "Normal" else kopf.warn
        post(ref(key), reason=reason, message=message)
        return
    meta = key.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    now = datetime.datetime.now(tz=datetime.UTC).isoformat()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "generateName": "kubekms-event-"},
        "type": kind,
        "reason": reason,
        "message": message[:_MAX_MESSAGE],
        "action": "Reconcile",
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "source": {"component": COMPONENT},
        "involvedObject": {
            "apiVersion": key.get("apiVersion"),
            "kind": key.get("kind"),
            "name": meta.get("name"),
            "namespace": namespace,
            "uid": meta.get("uid"),
        },
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": now,
    }
    try:
        await api.create(f"/api/v1/namespaces/{namespace}/events", body)
    except KubeError as e:
        log.warning("could not post event %s about KmsKey %s/%s: %s", reason, namespace, meta.get("name"), e)
