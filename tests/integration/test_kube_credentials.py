"""Credentials as a pod has them: the real in-cluster configuration path (KUBERNETES_SERVICE_HOST
and _PORT, a mounted ServiceAccount token, ca.crt and namespace) against an emulated API server
that serves HTTPS and authenticates its callers — and projected tokens that rotate under the
running operator and API.

A real cluster replaces a projected token about hourly and, on clusters without the legacy
expiry extension, refuses the old one once it expires. Here the rotation is immediate: the token
file is swapped atomically (as the kubelet does, through a symlink) and the old token revoked at
once, so every client must pick up the new file after its first 401.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from fixtures.kube_api import ApiProcess
from kube import KMSKEYS, Cluster
from kube.kmskeys import kmskey, wait_ready

KEYS = "/api/v1/kms/keys"
SECURE = {"tls": True, "authenticate_callers": True}


def mount(directory: Path, token: str, ca_file: Path, namespace: str = KUBEKMS_NAMESPACE) -> Path:
    """A ServiceAccount volume as the kubelet lays it out: files behind a `..data` symlink."""
    directory.mkdir(parents=True)
    rotate(directory, token, ca_file, namespace)
    for name in ("token", "ca.crt", "namespace"):
        (directory / name).symlink_to(Path("..data") / name)
    return directory


def rotate(
    directory: Path, token: str, ca_file: Path | None = None, namespace: str = KUBEKMS_NAMESPACE
) -> None:
    """Swap in a new token atomically (a new timestamped dir, then `..data` renamed over)."""
    generation = directory / f"..{os.urandom(4).hex()}"
    generation.mkdir()
    (generation / "token").write_text(token)
    old = directory / "..data"
    ca = ca_file.read_bytes() if ca_file is not None else (old / "ca.crt").read_bytes()
    (generation / "ca.crt").write_bytes(ca)
    (generation / "namespace").write_text(namespace)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(generation.name)
    tmp.replace(old)


def in_cluster_env(cluster: Cluster, sa_dir: Path) -> dict[str, Any]:
    return {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(cluster.port),
        "KUBEKMS_SERVICEACCOUNT_DIR": str(sa_dir),
        "KUBECONFIG": "",  # nothing but the pod's own credentials
    }


def bearers(cluster: Cluster) -> list[str]:
    """The bearer token of every request the emulator served, in order."""
    assert cluster.emulator is not None
    found = []
    for request in list(cluster.emulator):
        value = dict(request.headers).get("Authorization", "")
        found.append(value[len("Bearer "):] if value.startswith("Bearer ") else "")
    return found


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("kube_cluster", [SECURE], indirect=True)
def test_the_emulator_refuses_unknown_and_revoked_caller_tokens(kube_cluster: Cluster) -> None:
    """The emulator behaves like kube-apiserver here, or the rotation test below proves nothing."""
    assert kube_cluster.ca_file is not None
    context = ssl.create_default_context(cafile=str(kube_cluster.ca_file))

    def status(token: str) -> int:
        request = urllib.request.Request(f"{kube_cluster.url}/api/v1/namespaces")
        request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    token = kube_cluster.rbac.add_service_account(KUBEKMS_NAMESPACE, "kubekms-api")
    assert status(token) == 200
    assert status("made-up") == 401
    kube_cluster.rbac.revoke(token)
    assert status(token) == 401


@pytest.mark.parametrize("kube_cluster", [SECURE], indirect=True)
def test_rotated_projected_tokens_keep_the_operator_and_the_api_working(
    kube_cluster: Cluster,
    kube_operator_factory: Callable[..., OperatorProcess],
    kube_api_factory: Callable[..., ApiProcess],
    tmp_path: Path,
) -> None:
    assert kube_cluster.ca_file is not None
    rbac = kube_cluster.rbac
    op_token = rbac.add_service_account(KUBEKMS_NAMESPACE, "kubekms-operator")
    api_token = rbac.add_service_account(KUBEKMS_NAMESPACE, "kubekms-api")
    op_dir = mount(tmp_path / "operator-sa", op_token, kube_cluster.ca_file)
    api_dir = mount(tmp_path / "api-sa", api_token, kube_cluster.ca_file)
    operator = kube_operator_factory(**in_cluster_env(kube_cluster, op_dir)).start()
    api = kube_api_factory(**in_cluster_env(kube_cluster, api_dir)).start()

    kube_cluster.ensure_namespace("team-a")
    workload = rbac.add_service_account("team-a", "app", audiences=["https://kubernetes.default.svc"])
    rbac.allow("system:serviceaccount:team-a:app", ["get", "list", "create", "encrypt", "decrypt"],
               namespace="team-a")

    def round_trip(name: str) -> None:
        status, body = api.call("POST", KEYS, workload, {"projectId": "team-a", "name": name})
        assert status == 200, body
        key_id = body["key"]["id"]
        path = f"{KEYS}/{key_id}"
        status, enc = api.call("POST", f"{path}/encrypt", workload, {"plaintext": b64(b"hi")})
        assert status == 200, enc
        status, dec = api.call("POST", f"{path}/decrypt", workload, {"ciphertext": enc["ciphertext"]})
        assert status == 200 and base64.b64decode(dec["plaintext"]) == b"hi", dec

    round_trip("before")

    # The kubelet rotates both projected tokens; the old ones stop working at once.
    new: dict[str, str] = {}
    for directory, old, name in ((op_dir, op_token, "kubekms-operator"), (api_dir, api_token, "kubekms-api")):
        new[name] = rbac.add_service_account(KUBEKMS_NAMESPACE, name)
        rotate(directory, new[name])
        rbac.revoke(old)
    served_before = len(bearers(kube_cluster))
    kube_cluster.cut_watches()  # every watch reconnects: with the old token it gets 401

    round_trip("after-rotation")  # API writes + reviews, operator reconcile + Secret writes
    kube_cluster.create(KMSKEYS, kmskey("declared"), "team-a")  # Kopf's own watch sees it
    wait_ready(kube_cluster, "declared", "team-a")
    assert operator.running and api.proc is not None and api.proc.poll() is None
    # Both processes (the operator's own client and Kopf's) moved to the new tokens.
    after = bearers(kube_cluster)[served_before:]
    assert new["kubekms-operator"] in after and new["kubekms-api"] in after
    assert not {op_token, api_token} & set(after[-20:])  # nothing keeps presenting a dead token
