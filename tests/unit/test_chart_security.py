"""Security properties of every rendered chart: restricted Pods and least-privilege RBAC.

Every container, in every value set, runs as UID 10001 with no capabilities, no privilege
escalation and a read-only root filesystem. No role grants Secrets cluster-wide, no rule uses a
wildcard, and the only writer of Secrets is the operator, in its own namespace.
"""

from __future__ import annotations

from typing import Any

from fixtures.helm import NAMESPACE, RELEASE, VALUE_SETS, Render

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RBAC_KINDS = {"ClusterRole", "Role"}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for doc in docs:
        if doc["kind"] == "Deployment":
            out.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "Pod":
            out.append((doc["metadata"]["name"], doc["spec"]))
    return out


def rules(docs: list[dict[str, Any]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], r) for d in docs if d["kind"] == kind for r in d["rules"]]


def test_every_pod_and_container_is_restricted(render: Render, value_set: str) -> None:
    specs = pod_specs(render(VALUE_SETS[value_set]))
    assert len(specs) >= 2
    for name, pod in specs:
        assert pod["securityContext"] == RESTRICTED_POD, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        containers = pod["containers"] + pod.get("initContainers", [])
        for c in containers:
            assert c["securityContext"] == RESTRICTED_CONTAINER, f"{name}/{c['name']}"
            assert "resources" in c and c["resources"]["limits"]["memory"], f"{name}/{c['name']}"
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, f"{name}/{c['name']} needs a writable /tmp"
            volume = next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
            assert "emptyDir" in volume
            for port in c.get("ports", []):
                assert "hostPort" not in port


def test_secrets_reach_containers_only_by_reference(render: Render, value_set: str) -> None:
    for name, pod in pod_specs(render(VALUE_SETS[value_set])):
        for c in pod["containers"]:
            for env in c.get("env", []):
                if env["name"] in {"ROOT_ENCRYPTION_KEY", "HSM_PIN"}:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"], f"{name}: {env['name']}"


def test_no_wildcards_anywhere(render: Render, value_set: str) -> None:
    docs = render(VALUE_SETS[value_set])
    for kind in RBAC_KINDS:
        for name, rule in rules(docs, kind):
            for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), f"{kind} {name} has a wildcard in {field}"
                assert not any("*" in item for item in rule.get(field, [])), f"{kind} {name}: {field}"


def test_no_secret_access_cluster_wide(render: Render, value_set: str) -> None:
    for name, rule in rules(render(VALUE_SETS[value_set]), "ClusterRole"):
        assert "secrets" not in rule["resources"], f"ClusterRole {name} grants Secrets"


def test_secret_access_is_namespaced_and_least_privilege(render: Render) -> None:
    docs = render({})
    by_role = {}
    for name, rule in rules(docs, "Role"):
        if "secrets" in rule["resources"]:
            by_role[name] = set(rule["verbs"])
    assert by_role == {
        f"{RELEASE}-api": {"get", "list", "watch"},
        f"{RELEASE}-operator": {"get", "list", "watch", "create", "patch", "delete"},
    }
    for doc in docs:
        if doc["kind"] == "Role":
            assert doc["metadata"]["namespace"] == NAMESPACE


def _cluster_rules(docs: list[dict[str, Any]], name: str) -> dict[tuple[str, str], set[str]]:
    doc = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == name)
    out: dict[tuple[str, str], set[str]] = {}
    for rule in doc["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_api_cluster_role(render: Render) -> None:
    docs = render({})
    assert _cluster_rules(docs, f"{RELEASE}-api") == {
        ("kubekms.io", "kmskeys"): {"get", "list", "watch", "create", "patch", "delete"},
        ("", "namespaces"): {"get"},
        ("authentication.k8s.io", "tokenreviews"): {"create"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
        ("", "events"): {"create"},  # RotationRecommended on a key nearing its nonce budget
    }
    ns_rule = next(r for _, r in rules(docs, "ClusterRole") if r["resources"] == ["namespaces"]
                   and r["verbs"] == ["get"])
    assert ns_rule["resourceNames"] == ["kube-system"]


def test_operator_cluster_role(render: Render) -> None:
    assert _cluster_rules(render({}), f"{RELEASE}-operator") == {
        ("kubekms.io", "kmskeys"): {"get", "list", "watch", "patch"},
        ("kubekms.io", "kmskeys/status"): {"patch"},
        ("", "events"): {"create"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    }


def test_bindings_point_at_the_release_service_accounts(render: Render) -> None:
    docs = render({})
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    for doc in docs:
        if doc["kind"] in {"ClusterRoleBinding", "RoleBinding"}:
            for subject in doc["subjects"]:
                assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
                assert subject["namespace"] == NAMESPACE
            assert doc["roleRef"]["name"] == doc["metadata"]["name"]


def test_user_cluster_roles(render: Render) -> None:
    docs = render({})
    kms = ("kubekms.io", "kmskeys")
    assert _cluster_rules(docs, "kubekms-admin") == {kms: {
        "get", "list", "watch", "create", "update", "patch", "delete", "encrypt", "decrypt", "sign", "verify",
        "rotate", "generate-mac", "verify-mac", "derive-shared-secret", "export", "restore"}}
    assert _cluster_rules(docs, "kubekms-viewer") == {kms: {"get", "list", "watch"}}
    assert _cluster_rules(docs, "kubekms-cryptographic-operator") == {kms: {
        "get", "list", "encrypt", "decrypt", "sign", "verify", "generate-mac", "verify-mac"}}
    labels = {d["metadata"]["name"]: d["metadata"]["labels"] for d in docs if d["kind"] == "ClusterRole"}
    assert labels["kubekms-admin"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert labels["kubekms-viewer"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert labels["kubekms-cryptographic-operator"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    # Only the admin role may export key material or undo a deletion; aggregation must not leak
    # either to view/edit.
    for name in ("kubekms-viewer", "kubekms-cryptographic-operator"):
        assert not {"export", "restore"} & _cluster_rules(docs, name)[kms]


def test_user_roles_can_be_turned_off_or_left_unaggregated(render: Render) -> None:
    names = {d["metadata"]["name"] for d in render(VALUE_SETS["no-user-roles"]) if d["kind"] == "ClusterRole"}
    assert names == {f"{RELEASE}-api", f"{RELEASE}-operator"}
    for doc in render({"userRoles": {"aggregate": False}}):
        if doc["kind"] == "ClusterRole":
            labels = doc["metadata"]["labels"]
            assert not any(k.startswith("rbac.authorization.k8s.io/aggregate") for k in labels)


def test_service_account_tokens_are_mounted_only_where_needed(render: Render) -> None:
    docs = render({})
    for doc in docs:
        if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] != f"{RELEASE}-test":
            assert doc["automountServiceAccountToken"] is False
