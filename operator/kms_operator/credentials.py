"""Credentials for the Kubernetes API, from in-cluster config or an explicit kubeconfig.

The kubernetes client library would read KUBECONFIG when first used with global state; here the
configuration is loaded explicitly into a private `Configuration` each time, so a rotated
ServiceAccount token or a test's kubeconfig is always the one in effect. Both Kopf (through
`@kopf.on.login`) and the operator's own client use the same `Connection`.

Security property: the bearer token stays in memory, is never logged, and is sent only to the
configured API server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import kubernetes.client
import kubernetes.config


@dataclass(frozen=True, slots=True)
class Connection:
    server: str
    token: str | None = None
    scheme: str | None = None
    ca_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False
    default_namespace: str | None = None

    def __repr__(self) -> str:  # never show the token
        return f"Connection(server={self.server!r})"


def load() -> Connection:
    """In a pod: the ServiceAccount; elsewhere: $KUBECONFIG (or ~/.kube/config)."""
    config = kubernetes.client.Configuration()
    namespace: str | None = None
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    else:
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=config, persist_config=False
        )
        _, active = kubernetes.config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace")
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return Connection(
        server=config.host,
        token=token,
        scheme=scheme,
        ca_path=config.ssl_ca_cert,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        insecure=not config.verify_ssl,
        default_namespace=namespace,
    )
