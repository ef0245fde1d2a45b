"""The root-key Secret: created by the operator when it is absent, never rendered, never updated.

The chart renders no key material (a `helm template | kubectl apply` or an Argo CD sync would
otherwise write a fresh key over the live one and make every sealed key unreadable). Instead the
operator, started with `KUBEKMS_ROOT_KEY_SECRET` and no `ROOT_ENCRYPTION_KEY` (the chart's
optional secretKeyRef resolves to nothing while the Secret does not exist), creates the Secret
once with 32 random bytes and seals with the key the Secret holds afterwards. The API's
secretKeyRef is not optional: the kubelet holds its container until the Secret exists, so the
API never runs with, or makes, a key of its own.

Create-if-absent only: an existing Secret is read, never patched or replaced. Two operators
racing (a rollout) both end up with the key that was stored first (409 -> read it back).

Security property: the key goes from os.urandom into the create request and back out of the
stored Secret into the sealer; it is never logged, returned in an error or placed anywhere else.
The Secret carries no `app.kubernetes.io/instance` label, so neither Helm nor a label-tracking
GitOps tool regards it as part of the release (nothing prunes it on sync or uninstall).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from kms_core.errors import ConfigError
from kms_core.sealing.rootkey import ROOT_KEY_SIZE, decode_root_key, root_kek_id
from kms_kube.client import ApiError, Conflict, KubeClient, KubeError
from kms_kube.layout import secrets_path

SECRET_ENV = "KUBEKMS_ROOT_KEY_SECRET"  # name of the root-key Secret in the KubeKMS namespace
ITEM_ENV = "KUBEKMS_ROOT_KEY_SECRET_KEY"  # key inside it (default ROOT_ENCRYPTION_KEY)
ROOT_KEY_ENV = "ROOT_ENCRYPTION_KEY"
CREATED_BY = ("app.kubernetes.io/managed-by", "kubekms-operator")
COMPONENT = ("app.kubernetes.io/component", "root-key")
# How long a starting operator keeps trying an unreachable API server before it gives up (the
# kubelet then restarts it with back-off).
RETRY_SECONDS = 120.0

log = logging.getLogger("kubekms.operator.rootkey")


def wanted(env: Mapping[str, str]) -> bool:
    """Whether this process should fetch or create the root-key Secret: no HSM, no key given."""
    has = [bool(env.get(v, "").strip()) for v in ("HSM_LIB_PATH", ROOT_KEY_ENV, SECRET_ENV)]
    return not has[0] and not has[1] and has[2]


def manifest(name: str, item: str, key: bytes) -> dict[str, Any]:
    """The Secret to create: Opaque, `item` = base64 of the key (the ROOT_ENCRYPTION_KEY form)."""
    value = base64.b64encode(base64.b64encode(key)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "kubekms", COMPONENT[0]: COMPONENT[1],
                       CREATED_BY[0]: CREATED_BY[1]},
            "annotations": {
                "kubekms.io/kek-id": root_kek_id(key),
                "kubekms.io/backup": "Back this Secret up offline: it is the only key to all key material.",
            },
        },
        "type": "Opaque",
        "immutable": True,  # never updated by anyone: the API server refuses changes to its data
        "data": {item: value},
    }


def value_of(secret: Mapping[str, Any], name: str, item: str) -> str:
    """ROOT_ENCRYPTION_KEY as stored in the Secret; ConfigError naming the Secret when unusable."""
    raw = (secret.get("data") or {}).get(item)
    if not raw:
        raise ConfigError(f"Secret {name} has no key {item!r}: add the root key there (it is never "
                          "overwritten by KubeKMS) or point rootKey.secretKey at the right key")
    try:
        text = base64.b64decode(str(raw), validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ConfigError(f"Secret {name} key {item!r} is not base64 data") from None
    decode_root_key(text, source=f"Secret {name} key {item!r}")  # 32 bytes, or a ConfigError
    return text


async def ensure(api: KubeClient, namespace: str, name: str, item: str) -> str:
    """The root key held by Secret `namespace/name`, creating the Secret first when it is absent."""
    path = secrets_path(namespace, name)
    secret = await api.get_or_none(path)
    if secret is None:
        key = os.urandom(ROOT_KEY_SIZE)
        try:
            secret = await api.create(secrets_path(namespace), manifest(name, item, key))
            log.warning("Created the root key Secret %s/%s (kek_id %s). Back it up now: it is the only "
                        "key to every sealed key.", namespace, name, root_kek_id(key))
        except Conflict:
            secret = await api.get(path)  # another operator created it first: use that one
        del key
    return value_of(secret, name, item)


async def ensure_until(api: KubeClient, namespace: str, name: str, item: str,
                       retry_seconds: float = RETRY_SECONDS) -> str:
    """`ensure`, retrying while the API server is unreachable or failing; closes `api` at the end
    (its session belongs to this short-lived loop). A refusal (RBAC, validation) is a ConfigError."""
    deadline = time.monotonic() + retry_seconds
    delay = 0.5
    try:
        while True:
            try:
                return await ensure(api, namespace, name, item)
            except ApiError as exc:
                if exc.permanent:
                    raise ConfigError(f"cannot read or create the root key Secret {namespace}/{name}: "
                                      f"{exc.status} {exc.reason}") from None
                error: KubeError = exc
            except KubeError as exc:
                error = exc
            if time.monotonic() + delay > deadline:
                raise ConfigError(f"cannot reach the Kubernetes API to read the root key Secret: {error}")
            log.warning("waiting for the Kubernetes API to read the root key Secret: %s", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    finally:
        await api.close()


def resolve(env: Mapping[str, str], api: KubeClient, namespace: str) -> dict[str, str]:
    """The environment to build the sealer from: `env` itself, or (when `wanted`) `env` plus the
    ROOT_ENCRYPTION_KEY read from, or first created in, the root-key Secret."""
    if not wanted(env):
        return dict(env)
    name = env[SECRET_ENV].strip()
    item = env.get(ITEM_ENV, "").strip() or ROOT_KEY_ENV
    return {**env, ROOT_KEY_ENV: asyncio.run(ensure_until(api, namespace, name, item))}
