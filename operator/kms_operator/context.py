"""The per-process state every reconciliation shares, and the Degraded outcome.

Security property: holds the sealer (which never exports its key), the API client and object
names; no material.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from kms_core.sealing.base import Sealer
from kms_kube.client import KubeClient
from kms_operator.keyindex import KeyIndex
from kms_operator.overdue import Overdue
from kms_operator.rejections import Rejections
from kms_operator.settings import Settings


class Degraded(Exception):
    """The key cannot be served as it is; `fields` are status fields known anyway (e.g. keyId)."""

    def __init__(self, reason: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.fields = fields


@dataclass
class Runtime:
    """What every reconciliation needs; built once per process (kept in Kopf's memo)."""

    api: KubeClient
    sealer: Sealer
    settings: Settings
    index: KeyIndex = field(default_factory=KeyIndex)  # material Secret -> KmsKey (Secret watch)
    rejections: Rejections = field(default_factory=Rejections)  # refused writes per KmsKey
    overdue: Overdue = field(default_factory=Overdue)  # past-due scheduled rotations (gauge)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        # Kopf runs a key's handlers and its timer concurrently, and the Secret watch may converge
        # it too; one lock per key serialises them.
        return self._locks.setdefault((namespace, name), asyncio.Lock())


def ref(key: dict[str, Any]) -> kopf.Body:
    """A KmsKey as Kopf's event API takes it (events name the object by uid/name/namespace)."""
    return kopf.Body(cast(kopf.RawBody, key))


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def set_label(label: str, value: str) -> dict[str, Any]:
    return {"op": "add", "path": f"/metadata/labels/{escape(label)}", "value": value}
