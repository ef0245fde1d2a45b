"""The mode registry: `--store` picks one module's `build(settings, sealer)`, and each mode builds
its store and auth backend from the settings object alone (never from the process environment)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
import yaml

from kms_api import modes
from kms_api.auth.kubernetes import KubernetesAuth
from kms_api.auth.tokens import TokenAuth
from kms_api.kube.store import KubernetesKeyStore
from kms_api.modes import kubernetes
from kms_api.settings import STORES, KubeSettings, Settings, load_settings
from kms_core.errors import SealerMismatch
from kms_core.sealing.rootkey import RootKeySealer
from kms_core.stores.base import KeyStore
from kms_core.stores.sqlite import SqliteStore
from kms_kube.config import KubeConfig

SEALER = RootKeySealer(os.urandom(32))
NOWHERE = KubeConfig(server="http://127.0.0.1:9")  # never contacted: building makes no request


@pytest.mark.parametrize("store", [SqliteStore, KubernetesKeyStore])
def test_every_store_implements_the_whole_protocol(store: type) -> None:
    """No capability is optional: callers never probe a store with getattr."""
    protocol = [n for n, f in vars(KeyStore).items() if inspect.iscoroutinefunction(f)]
    assert "count_by_state" in protocol
    assert all(inspect.iscoroutinefunction(getattr(store, n, None)) for n in protocol), store
    assert isinstance(store.generates_material, bool)


def test_every_store_setting_has_exactly_one_mode() -> None:
    assert set(modes.MODES) == set(STORES)
    assert modes.MODES["embedded"] is modes.embedded.build
    assert modes.MODES["kubernetes"] is modes.kubernetes.build


async def test_embedded_mode_builds_sqlite_and_token_auth(tmp_path: Path) -> None:
    settings = Settings(store="embedded", data_dir=tmp_path / "data", admin_token="a" * 40)
    store, auth = modes.build(settings, SEALER)
    try:
        assert isinstance(store, SqliteStore) and isinstance(auth, TokenAuth)
        assert store.generates_material is False
        assert await store.count_by_state() == (0, 0)
        assert (await auth.authenticate("a" * 40)).kind == "admin"
    finally:
        await store.close()
        await auth.close()
    # The data dir is now bound to SEALER's KEK: another root key is refused before any write.
    with pytest.raises(SealerMismatch):
        modes.build(settings, RootKeySealer(os.urandom(32)))


async def test_kubernetes_mode_takes_every_knob_from_settings_kube() -> None:
    knobs = KubeSettings(namespace="keys", token_audiences=("kubekms",), ready_timeout=4.0,
                         auth_cache_ttl=3.0, request_timeout=2.5, list_page_size=7)
    store, auth = kubernetes.build(Settings(store="kubernetes", kube=knobs), SEALER, config=NOWHERE)
    try:
        assert isinstance(store, KubernetesKeyStore) and isinstance(auth, KubernetesAuth)
        assert store.namespace == "keys" and store.ready_timeout == 4.0
        assert store.keys.page_size == store.secrets.page_size == 7
        assert auth.client is store.client and store.client.timeout == 2.5  # one shared client
        assert auth.audiences == ["kubekms"]
        assert await store.count_by_state() is None  # caches not started: cannot count
    finally:
        await store.close()
        await auth.close()


@pytest.mark.parametrize(
    ("configured", "discovered", "expected"),
    [("keys", "pod-ns", "keys"), (None, "pod-ns", "pod-ns"), (None, None, kubernetes.DEFAULT_NAMESPACE)],
)  # fmt: skip
async def test_kubernetes_namespace_setting_then_pod_then_default(
    configured: str | None, discovered: str | None, expected: str
) -> None:
    config = KubeConfig(server=NOWHERE.server, namespace=discovered)
    store, auth = kubernetes.build(Settings(kube=KubeSettings(namespace=configured)), SEALER, config=config)
    assert isinstance(store, KubernetesKeyStore) and store.namespace == expected
    await store.close()
    await auth.close()


async def test_kubernetes_mode_reads_the_kubeconfig_and_context_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))  # the settings win, not the environment
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "a", "cluster": {"server": "http://127.0.0.1:1"}},
                     {"name": "b", "cluster": {"server": "http://127.0.0.1:2"}}],
        "contexts": [{"name": "a", "context": {"cluster": "a"}},
                     {"name": "b", "context": {"cluster": "b"}}],
    }))  # fmt: skip
    settings = Settings(kube=KubeSettings(kubeconfig=str(path), context="b"))
    store, auth = kubernetes.build(settings, SEALER)
    assert isinstance(store, KubernetesKeyStore)
    assert store.client.config.server == "http://127.0.0.1:2"
    await store.close()
    await auth.close()


async def test_kubernetes_mode_in_a_pod_reads_the_serviceaccount_dir_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted = tmp_path / "sa"
    mounted.mkdir()
    (mounted / "token").write_text("t")
    (mounted / "namespace").write_text("kubekms-prod")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    monkeypatch.setenv("KUBEKMS_SERVICEACCOUNT_DIR", str(tmp_path / "elsewhere"))  # the settings win
    monkeypatch.delenv("KUBECONFIG", raising=False)
    settings = load_settings([], {"KUBEKMS_SERVICEACCOUNT_DIR": str(mounted)})
    store, auth = kubernetes.build(settings, SEALER)
    assert isinstance(store, KubernetesKeyStore)
    assert store.client.config.server == "https://10.0.0.1:6443"
    assert store.namespace == "kubekms-prod"  # the pod's namespace, read from the mounted dir
    await store.close()
    await auth.close()
