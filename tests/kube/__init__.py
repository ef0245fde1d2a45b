"""The emulated Kubernetes API server the operator and API tests drive (see `kube.emulator`)."""

from kube.cluster import (
    ADMIN_TOKEN,
    CRDS,
    EVENTS,
    KMSKEYS,
    KUBEKMS_NAMESPACE,
    LEASES,
    NAMESPACES,
    SECRETS,
    Cluster,
)
from kube.emulator import KubeEmulator
from kube.rbac import Rbac

__all__ = [
    "ADMIN_TOKEN",
    "CRDS",
    "EVENTS",
    "KMSKEYS",
    "KUBEKMS_NAMESPACE",
    "LEASES",
    "NAMESPACES",
    "SECRETS",
    "Cluster",
    "KubeEmulator",
    "Rbac",
]
