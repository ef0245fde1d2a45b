"""The operator's root-key Secret on the emulated API server: create-if-absent, never update.

`kms_operator.rootkey` runs against the real Kubernetes client and the emulator: an absent Secret
is created once (two racing operators agree on one key), an existing one is read and never
written, an unusable one stops the operator with a message that names the Secret and not the key,
and the real `kubekms-operator` process started without ROOT_ENCRYPTION_KEY creates the Secret,
seals with it, and on a restart keeps using it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.kube import OperatorProcess
from kms_core.errors import ConfigError
from kms_kube.client import KubeClient
from kms_kube.config import load_kubeconfig
from kms_operator import rootkey
from kube import KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import unseal_all, wait_ready

NAME = "kubekms-root-key"
ITEM = "ROOT_ENCRYPTION_KEY"


@pytest.fixture
def client(kube_cluster: Cluster, kube_kubeconfig: Path) -> Iterator[KubeClient]:
    yield KubeClient(load_kubeconfig(kube_kubeconfig))


def stored_key(cluster: Cluster) -> str:
    secret = cluster.get(SECRETS, KUBEKMS_NAMESPACE, NAME)
    assert secret is not None
    return base64.b64decode(secret["data"][ITEM]).decode()


def test_an_absent_secret_is_created_once_even_by_racing_operators(
    kube_cluster: Cluster, kube_kubeconfig: Path
) -> None:
    async def race() -> list[str]:
        clients = [KubeClient(load_kubeconfig(kube_kubeconfig)) for _ in range(4)]
        try:
            made = [rootkey.ensure(c, KUBEKMS_NAMESPACE, NAME, ITEM) for c in clients]
            return list(await asyncio.gather(*made))
        finally:
            for c in clients:
                await c.close()

    keys = asyncio.run(race())
    assert len(set(keys)) == 1 and len(base64.b64decode(keys[0], validate=True)) == 32
    assert keys[0] == stored_key(kube_cluster)
    assert len(kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, NAME)) == 1  # one create, no update
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, NAME)
    assert secret is not None and secret["immutable"] is True
    labels = secret["metadata"]["labels"]
    # Not part of the Helm release, nor of a GitOps application tracked by the instance label.
    assert "app.kubernetes.io/instance" not in labels
    assert labels["app.kubernetes.io/managed-by"] == "kubekms-operator"


def test_an_existing_secret_is_read_and_never_written(kube_cluster: Cluster, client: KubeClient) -> None:
    mine = base64.b64encode(bytes(range(32))).decode()
    data = {ITEM: base64.b64encode(mine.encode()).decode()}
    kube_cluster.create(SECRETS, {"metadata": {"name": NAME}, "data": data}, namespace=KUBEKMS_NAMESPACE)
    assert asyncio.run(rootkey.ensure_until(client, KUBEKMS_NAMESPACE, NAME, ITEM)) == mine
    assert len(kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, NAME)) == 1


@pytest.mark.parametrize("data", [{"other": "eA=="}, {ITEM: base64.b64encode(b"too-short").decode()}])
def test_an_unusable_secret_is_refused_not_repaired(
    kube_cluster: Cluster, client: KubeClient, data: dict[str, str]
) -> None:
    kube_cluster.create(SECRETS, {"metadata": {"name": NAME}, "data": data}, namespace=KUBEKMS_NAMESPACE)
    with pytest.raises(ConfigError, match=f"Secret {NAME}") as info:
        asyncio.run(rootkey.ensure_until(client, KUBEKMS_NAMESPACE, NAME, ITEM))
    assert "too-short" not in str(info.value)
    assert len(kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, NAME)) == 1  # left as it was


def test_a_forbidden_create_is_a_configuration_error(kube_cluster: Cluster, client: KubeClient) -> None:
    kube_cluster.fail(30, status=403, path="/secrets", method="POST")
    with pytest.raises(ConfigError, match="403"):
        asyncio.run(rootkey.ensure_until(client, KUBEKMS_NAMESPACE, NAME, ITEM, retry_seconds=5))
    assert kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, NAME) is None


def test_wanted_only_without_a_key_or_an_hsm() -> None:
    assert rootkey.wanted({rootkey.SECRET_ENV: NAME})
    assert not rootkey.wanted({rootkey.SECRET_ENV: NAME, ITEM: "x"})
    assert not rootkey.wanted({rootkey.SECRET_ENV: NAME, "HSM_LIB_PATH": "/lib.so"})
    assert not rootkey.wanted({})


def test_the_operator_creates_the_secret_and_keeps_sealing_with_it(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    # As the chart runs it: the optional secretKeyRef resolved to nothing (no Secret yet).
    operator = kube_operator_factory(**{ITEM: "", rootkey.SECRET_ENV: NAME}).start()
    root_key = stored_key(kube_cluster)
    kube_cluster.create("kubekms.io/v1alpha1/kmskeys",
                        {"metadata": {"name": "k1"}, "spec": {"keyUsage": "encrypt-decrypt",
                                                               "algorithm": "aes-256-gcm"}},
                        namespace="default")
    key = wait_ready(kube_cluster, "k1", "default")
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key['status']['keyId']}")
    assert secret is not None and list(unseal_all(root_key, key, secret)) == [1]
    operator.stop()
    operator.start()  # a restart reads the stored key; it never makes another
    assert stored_key(kube_cluster) == root_key
    assert len(kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, NAME)) == 1
    assert root_key not in operator.log() and "Created the root key Secret" in operator.log()
