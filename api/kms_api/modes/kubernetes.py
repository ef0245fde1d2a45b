"""Kubernetes mode (`--store kubernetes`): KmsKeys and operator Secrets as the key store,
ServiceAccount tokens (TokenReview) and RBAC (SubjectAccessReview) as auth, one API client shared.

Every knob comes from `Settings.kube` (`kms_api.settings.KubeSettings`, flags and KUBEKMS_*
variables declared there); the connection itself from `kms_kube.config.load_config`.
Security property: the same ServiceAccount credentials serve both roles; nothing is listed,
watched or reviewed before the first request or readiness probe needs it, and no credential
leaves this process except to the configured API server.
"""

from __future__ import annotations

from kms_api.auth.base import AuthBackend
from kms_api.auth.kubernetes import KubernetesAuth
from kms_api.kube.store import KubernetesKeyStore
from kms_api.settings import Settings
from kms_core.sealing.base import Sealer
from kms_core.stores.base import KeyStore
from kms_kube.client import KubeClient
from kms_kube.config import KubeConfig, load_config

__all__ = ["DEFAULT_NAMESPACE", "build"]

DEFAULT_NAMESPACE = "kubekms-system"  # the operator's default too


def build(
    settings: Settings, sealer: Sealer, *, config: KubeConfig | None = None
) -> tuple[KeyStore, AuthBackend]:
    """The Kubernetes-mode store and auth backend. `store.close()` closes the shared client.

    `sealer` opens the owner records of material Secrets (the store serves only what they vouch
    for); `config` overrides kubeconfig/in-cluster discovery (tests pass the emulator's address).
    """
    kube = settings.kube
    cfg = config or load_config(kube.kubeconfig, kube.context, serviceaccount_dir=kube.serviceaccount_dir)
    namespace = kube.namespace or cfg.namespace or DEFAULT_NAMESPACE
    client = KubeClient(cfg, timeout=kube.request_timeout)
    store = KubernetesKeyStore(
        client, namespace, sealer, ready_timeout=kube.ready_timeout, list_page_size=kube.list_page_size
    )
    auth = KubernetesAuth(
        client, audiences=kube.token_audiences, ttl=kube.auth_cache_ttl, sealer=sealer
    )
    return store, auth
