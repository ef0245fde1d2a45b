"""The emulated API server behaves like kube-apiserver where the operator, the API and kubectl rely on it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.kube import EXAMPLES
from kube import KMSKEYS, SECRETS, Cluster

MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"


def call(
    cluster: Cluster,
    method: str,
    path: str,
    body: Any = None,
    ctype: str = "application/json",
    timeout: float = 10,
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=timeout)
    try:
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def watch_lines(cluster: Cluster, path: str, timeout: float = 10) -> list[dict[str, Any]]:
    status, _ = 0, None
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    status = resp.status
    assert status == 200
    lines = resp.read().splitlines()
    conn.close()
    return [json.loads(line) for line in lines if line.strip()]


def kmskey(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KmsKey",
        "metadata": {"name": name},
        "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm", **spec},
    }


KEYS = "/apis/kubekms.io/v1alpha1/namespaces/default/kmskeys"


def test_discovery_lists_the_crd_and_its_status(kube_cluster: Cluster) -> None:
    status, body = call(kube_cluster, "GET", "/apis/kubekms.io/v1alpha1")
    assert status == 200
    entries = {r["name"]: r for r in body["resources"]}
    assert entries["kmskeys"]["kind"] == "KmsKey" and entries["kmskeys"]["namespaced"] is True
    assert entries["kmskeys"]["shortNames"] == ["kmsk"]
    assert "kmskeys/status" in entries
    _, groups = call(kube_cluster, "GET", "/apis")
    assert "kubekms.io" in {g["name"] for g in groups["groups"]}
    _, ns = call(kube_cluster, "GET", "/api/v1/namespaces/kube-system")
    assert ns["kind"] == "Namespace" and len(ns["metadata"]["uid"]) == 36
    _, nss = call(kube_cluster, "GET", "/api/v1/namespaces")
    assert nss["kind"] == "NamespaceList" and "kube-system" in {n["metadata"]["name"] for n in nss["items"]}


def test_create_stamps_metadata_and_conflicts(kube_cluster: Cluster) -> None:
    status, obj = call(kube_cluster, "POST", KEYS, kmskey("k1"))
    assert status == 201
    meta = obj["metadata"]
    assert meta["namespace"] == "default" and meta["generation"] == 1 and meta["uid"]
    assert int(meta["resourceVersion"]) > 0 and meta["creationTimestamp"].endswith("Z")
    assert call(kube_cluster, "POST", KEYS, kmskey("k1"))[0] == 409
    _, listing = call(kube_cluster, "GET", KEYS)
    assert listing["kind"] == "KmsKeyList" and listing["apiVersion"] == "kubekms.io/v1alpha1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    status, generated = call(
        kube_cluster,
        "POST",
        "/api/v1/namespaces/default/events",
        {"metadata": {"generateName": "ev-"}, "reason": "R"},
    )
    assert status == 201 and generated["metadata"]["name"].startswith("ev-")


def test_generation_bumps_on_spec_only_and_status_subresource(kube_cluster: Cluster) -> None:
    obj = call(kube_cluster, "POST", KEYS, kmskey("k2"))[1]
    rv = obj["metadata"]["resourceVersion"]
    _, obj = call(kube_cluster, "PATCH", f"{KEYS}/k2", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert obj["metadata"]["generation"] == 1 and obj["metadata"]["resourceVersion"] != rv
    _, obj = call(
        kube_cluster, "PATCH", f"{KEYS}/k2", {"spec": {"disabled": True}, "status": {"x": 1}}, MERGE
    )
    assert obj["metadata"]["generation"] == 2 and "status" not in obj  # status ignored on the main resource
    _, obj = call(
        kube_cluster,
        "PATCH",
        f"{KEYS}/k2/status",
        {"status": {"version": 1}, "spec": {"disabled": False}},
        MERGE,
    )
    assert (
        obj["status"] == {"version": 1}
        and obj["spec"]["disabled"] is True
        and obj["metadata"]["generation"] == 2
    )
    same_rv = obj["metadata"]["resourceVersion"]
    _, obj = call(kube_cluster, "PATCH", f"{KEYS}/k2/status", {"status": {"version": 1}}, MERGE)
    assert obj["metadata"]["resourceVersion"] == same_rv, "a no-op patch changes nothing"


def test_json_patch_test_failure_is_422_and_stale_resource_version_409(kube_cluster: Cluster) -> None:
    obj = call(kube_cluster, "POST", KEYS, kmskey("k3"))[1]
    rv = obj["metadata"]["resourceVersion"]
    ok = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "1"}},
    ]
    assert call(kube_cluster, "PATCH", f"{KEYS}/k3", ok, JSONPATCH)[0] == 200
    status, body = call(kube_cluster, "PATCH", f"{KEYS}/k3", ok, JSONPATCH)  # rv moved on
    assert status == 422 and body["kind"] == "Status" and body["code"] == 422
    assert call(kube_cluster, "PATCH", f"{KEYS}/k3", [{"op": "remove", "path": "/nope"}], JSONPATCH)[0] == 422
    stale = {"metadata": {"resourceVersion": rv, "labels": {"y": "2"}}}
    assert call(kube_cluster, "PATCH", f"{KEYS}/k3", stale, MERGE)[0] == 409
    assert call(kube_cluster, "PATCH", f"{KEYS}/missing", {"spec": {}}, MERGE)[0] == 404


def test_finalizers_hold_deletion(kube_cluster: Cluster) -> None:
    created = call(
        kube_cluster, "POST", KEYS, {**kmskey("k4"), "metadata": {"name": "k4", "finalizers": ["x/y"]}}
    )[1]
    status, obj = call(kube_cluster, "DELETE", f"{KEYS}/k4")
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    assert kube_cluster.get(KMSKEYS, "default", "k4") is not None
    rv = created["metadata"]["resourceVersion"]
    call(kube_cluster, "PATCH", f"{KEYS}/k4", {"metadata": {"finalizers": None}}, MERGE)
    assert kube_cluster.get(KMSKEYS, "default", "k4") is None
    events = watch_lines(kube_cluster, f"{KEYS}?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert call(kube_cluster, "GET", f"{KEYS}/k4")[0] == 404


def test_watch_resumes_from_a_resource_version() -> None:
    with Cluster(log_size=3, bookmark_interval=0.2) as cluster:
        first = cluster.create(SECRETS, {"metadata": {"name": "a"}}, "default")
        for name in ("b", "c"):
            cluster.create(SECRETS, {"metadata": {"name": name}}, "default")
        rv = first["metadata"]["resourceVersion"]
        path = "/api/v1/namespaces/default/secrets?watch=true&timeoutSeconds=1&allowWatchBookmarks=true"
        events = watch_lines(cluster, f"{path}&resourceVersion={rv}")
        assert [e["object"]["metadata"].get("name") for e in events if e["type"] == "ADDED"] == ["b", "c"]
        assert events[-1]["type"] == "BOOKMARK"
        everything = watch_lines(cluster, path.replace("&allowWatchBookmarks=true", ""))
        assert {e["object"]["metadata"]["name"] for e in everything} == {"a", "b", "c"}
        for name in ("d", "e", "f"):
            cluster.create(SECRETS, {"metadata": {"name": name}}, "default")
        gone = watch_lines(cluster, f"{path}&resourceVersion={rv}")
        assert gone[0]["type"] == "ERROR" and gone[0]["object"]["code"] == 410
        labelled = cluster.create(SECRETS, {"metadata": {"name": "g", "labels": {"k": "v"}}}, "default")
        assert [s["metadata"]["name"] for s in cluster.list(SECRETS, "default", "k=v")] == ["g"]
        assert labelled["metadata"]["labels"] == {"k": "v"}


def test_cut_watches_drops_open_streams(kube_cluster: Cluster) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", kube_cluster.port, timeout=10)
    conn.request("GET", f"{KEYS}?watch=true&timeoutSeconds=30")
    resp = conn.getresponse()
    kube_cluster.wait_for(lambda: kube_cluster.open_watches == 1, timeout=5)
    started = time.monotonic()
    assert kube_cluster.cut_watches() == 1
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    assert time.monotonic() - started < 5
    conn.close()


def test_faults_fail_and_slow(kube_cluster: Cluster) -> None:
    kube_cluster.fail(30, path="/secrets")
    assert call(kube_cluster, "GET", "/api/v1/namespaces/default/secrets")[0] == 503
    assert call(kube_cluster, "GET", KEYS)[0] == 200
    kube_cluster.heal()
    assert call(kube_cluster, "GET", "/api/v1/namespaces/default/secrets")[0] == 200
    kube_cluster.slow(30, delay=0.5)
    started = time.monotonic()
    call(kube_cluster, "GET", KEYS)
    assert time.monotonic() - started >= 0.5
    kube_cluster.heal()


def test_token_and_access_reviews(kube_cluster: Cluster) -> None:
    token = kube_cluster.rbac.add_service_account("team-a", "app")
    kube_cluster.rbac.allow("system:serviceaccount:team-a:app", ["encrypt"], namespace="team-a", names=["k"])
    _, review = call(
        kube_cluster,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    assert review["status"]["authenticated"] is True
    user = review["status"]["user"]
    assert user["username"] == "system:serviceaccount:team-a:app"
    _, bad = call(
        kube_cluster, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "nope"}}
    )
    assert bad["status"]["authenticated"] is False
    _, wrong_aud = call(
        kube_cluster,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"spec": {"token": token, "audiences": ["other"]}},
    )
    assert wrong_aud["status"]["authenticated"] is False
    # A projected token for KubeKMS: valid only when its audience is asked for, as in kube-apiserver.
    projected = kube_cluster.rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    for audiences, authenticated in (([], False), (["kubekms", "vault"], True)):
        _, answer = call(kube_cluster, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                         {"spec": {"token": projected, "audiences": audiences}})
        assert answer["status"]["authenticated"] is authenticated
        assert answer["status"].get("audiences", []) == (["kubekms"] if authenticated else [])

    def sar(verb: str, namespace: str, name: str) -> bool:
        attrs = {
            "group": "kubekms.io",
            "resource": "kmskeys",
            "verb": verb,
            "namespace": namespace,
            "name": name,
        }
        spec = {"user": user["username"], "groups": user["groups"], "resourceAttributes": attrs}
        status, body = call(
            kube_cluster, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": spec}
        )
        assert status == 201
        return bool(body["status"]["allowed"])

    assert sar("encrypt", "team-a", "k") is True
    assert sar("decrypt", "team-a", "k") is False
    assert sar("encrypt", "team-b", "k") is False
    assert sar("encrypt", "team-a", "other") is False


def test_kubectl_apply_examples(kube_cluster: Cluster, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    command = ["kubectl", "--server", kube_cluster.url, "apply", "--validate=false", "-f", str(EXAMPLES)]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    names = {example.stem for example in EXAMPLES.glob("*.yaml")}
    assert first.stdout.count(" created") == len(names)
    stored = kube_cluster.list(KMSKEYS, "default")
    assert {o["spec"]["keyUsage"] for o in stored} == names
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and again.stdout.count(" unchanged") == len(names), again.stderr
    got = subprocess.run(
        ["kubectl", "--server", kube_cluster.url, "get", "kmsk", "-o", "name"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert got.returncode == 0 and len(got.stdout.split()) == len(names), got.stderr
