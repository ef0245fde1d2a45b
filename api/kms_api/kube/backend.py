"""Factory for Kubernetes mode: one API client shared by the key store and the auth backend.

`build(settings)` reads what it needs from the settings object when present and falls back to the
environment (KUBEKMS_NAMESPACE, KUBEKMS_TOKEN_AUDIENCE, KUBEKMS_KUBECONFIG, KUBEKMS_KUBE_CONTEXT,
KUBEKMS_KUBE_READY_TIMEOUT, KUBEKMS_AUTH_CACHE_TTL, KUBEKMS_KUBE_REQUEST_TIMEOUT,
KUBEKMS_KUBE_LIST_PAGE_SIZE), so it works with the API's settings class without depending on its
shape.
Security property: the same ServiceAccount credentials serve both roles, and nothing starts
listening or caching before the first request needs it (no credentials leave this process except
to the configured API server).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kms_api.auth.base import AuthBackend
from kms_api.auth.kubernetes import KubernetesAuth
from kms_api.kube.store import KubernetesKeyStore
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore
from kms_kube.client import KubeClient
from kms_kube.config import KubeConfig, load_config

DEFAULT_NAMESPACE = "kubekms-system"  # the operator's default too


@dataclass(frozen=True)
class KubeSettings:
    """The Kubernetes-mode knobs, resolved from a settings object and the environment."""

    namespace: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    token_audiences: tuple[str, ...] = ()
    ready_timeout: float = 30.0
    auth_cache_ttl: float = 10.0
    auth_cache_size: int = 10_000
    request_timeout: float = 10.0
    list_page_size: int = 500  # `limit` of each list request of the watch caches

    @classmethod
    def resolve(cls, settings: object | None = None) -> KubeSettings:
        # The API's Settings carries the environment it was loaded from; prefer it to os.environ.
        environ = getattr(settings, "env", None) or os.environ

        def pick(attr: str, env: str) -> str | None:
            value = getattr(settings, attr, None) if settings is not None else None
            if value is None or value == "":
                value = environ.get(env) or None
            return None if value is None else str(value)

        audience = pick("token_audience", "KUBEKMS_TOKEN_AUDIENCE")
        return cls(
            namespace=pick("kube_namespace", "KUBEKMS_NAMESPACE"),
            kubeconfig=pick("kubeconfig", "KUBEKMS_KUBECONFIG") or _first_path(environ.get("KUBECONFIG")),
            context=pick("kube_context", "KUBEKMS_KUBE_CONTEXT"),
            token_audiences=tuple(a.strip() for a in audience.split(",") if a.strip()) if audience else (),
            ready_timeout=float(pick("kube_ready_timeout", "KUBEKMS_KUBE_READY_TIMEOUT") or 30.0),
            auth_cache_ttl=float(pick("auth_cache_ttl", "KUBEKMS_AUTH_CACHE_TTL") or 10.0),
            request_timeout=float(pick("kube_request_timeout", "KUBEKMS_KUBE_REQUEST_TIMEOUT") or 10.0),
            list_page_size=_page_size(pick("kube_list_page_size", "KUBEKMS_KUBE_LIST_PAGE_SIZE")),
        )


def build(
    settings: object | None, sealer: Sealer, *, config: KubeConfig | None = None
) -> tuple[KeyStore, AuthBackend]:
    """The Kubernetes-mode store and auth backend. Call `store.close()` (closes the client) at exit.

    `sealer` opens the owner records of material Secrets (the store serves only what they vouch
    for); `config` overrides kubeconfig/in-cluster discovery (tests pass the emulator's address).
    """
    ks = KubeSettings.resolve(settings)
    cfg = config or load_config(ks.kubeconfig, ks.context)
    namespace = ks.namespace or cfg.namespace or DEFAULT_NAMESPACE
    client = KubeClient(cfg, timeout=ks.request_timeout)
    store = KubernetesKeyStore(
        client, namespace, sealer, ready_timeout=ks.ready_timeout, list_page_size=ks.list_page_size
    )
    auth = KubernetesAuth(client, audiences=ks.token_audiences, ttl=ks.auth_cache_ttl,
                          max_entries=ks.auth_cache_size)
    return store, auth


def _page_size(value: str | None) -> int:
    """500 when unset; 0 turns pagination off. Anything else than a non-negative integer is refused
    at startup rather than silently listing everything in one request."""
    if value is None:
        return 500
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"KUBEKMS_KUBE_LIST_PAGE_SIZE must be an integer, not {value!r}") from None
    if size < 0:
        raise ValueError(f"KUBEKMS_KUBE_LIST_PAGE_SIZE must be 0 or more, not {size}")
    return size


def _first_path(value: str | None) -> str | None:
    """KUBECONFIG may list several files; like kubectl's default merge, the first one wins here."""
    return value.split(os.pathsep)[0] if value else None
