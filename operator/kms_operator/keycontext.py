"""The KmsKey one reconciliation converges, as the rotation and policy steps share it: the
process's runtime, the object, its key id, usage and algorithm, and the handler's logger.

Built once per converge, after the key id and the spec's usage and algorithm are settled; the
material Secret and the policy decision are not in it, because each step returns new ones.

Security property: carries names and the runtime (whose sealer never exports its key), no
material.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kms_core.model import Algorithm, KeyUsage
from kms_kube import layout as m
from kms_kube.layout import secrets_path
from kms_operator.context import Runtime


@dataclass(frozen=True, slots=True)
class KeyContext:
    """One KmsKey under reconciliation and what its steps need to act on it."""

    rt: Runtime
    key: dict[str, Any]  # the KmsKey object as this reconciliation read it
    key_id: str
    usage: KeyUsage
    alg: Algorithm
    logger: logging.Logger | Any  # Kopf's per-object logger (a LoggerAdapter)

    @property
    def ref(self) -> tuple[str, str]:
        """The KmsKey's namespace and name."""
        return self.key["metadata"]["namespace"], self.key["metadata"]["name"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.key.get("spec") or {}

    @property
    def secret_path(self) -> str:
        """The API path of the key's material Secret."""
        return secrets_path(self.rt.settings.namespace, m.secret_name(self.key_id))
