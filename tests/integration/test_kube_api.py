"""Kubernetes mode end to end: the real `kubekms-api --store kubernetes` process and the real
operator against the emulated API server, called with ServiceAccount tokens over loopback HTTP.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from fixtures.kube_api import ApiProcess
from kube import KMSKEYS, NAMESPACES, SECRETS, Cluster

KEYS = "/api/v1/kms/keys"
ALL_VERBS = ["get", "list", "create", "update", "delete", "encrypt", "decrypt", "sign", "verify", "rotate"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def team(cluster: Cluster, namespace: str, verbs: list[str] = ALL_VERBS) -> str:
    """A ServiceAccount token in `namespace`, allowed `verbs` on kmskeys in that namespace only."""
    cluster.ensure_namespace(namespace)
    token = cluster.rbac.add_service_account(namespace, "app")
    cluster.rbac.allow(f"system:serviceaccount:{namespace}:app", verbs, namespace=namespace)
    return token


def create_key(api: ApiProcess, token: str, project: str, name: str, **extra: Any) -> dict[str, Any]:
    status, body = api.call("POST", KEYS, token, {"projectId": project, "name": name, **extra})
    assert status == 200, body
    return dict(body["key"])


def ready(cluster: Cluster, namespace: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        obj = cluster.get(KMSKEYS, namespace, name)
        conds = (obj or {}).get("status", {}).get("conditions", [])
        return obj if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None

    return probe


def test_serviceaccount_encrypts_decrypts_signs_and_verifies(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    aes = create_key(kube_api, token, "team-a", "payments", description="card data")
    obj = kube_cluster.get(KMSKEYS, "team-a", "payments")
    assert obj is not None and obj["status"]["keyId"] == aes["id"]
    kube_system = kube_cluster.get(NAMESPACES, None, "kube-system")
    assert kube_system is not None
    assert aes["projectId"] == "team-a" and aes["orgId"] == kube_system["metadata"]["uid"]
    assert aes["name"] == "payments" and aes["version"] == 1 and aes["isDisabled"] is False
    assert aes["description"] == "card data" and aes["createdAt"].endswith("Z")

    path = f"{KEYS}/{aes['id']}"
    status, enc = kube_api.call("POST", f"{path}/encrypt", token, {"plaintext": b64(b"4111 1111")})
    assert status == 200, enc
    status, dec = kube_api.call("POST", f"{path}/decrypt", token, {"ciphertext": enc["ciphertext"]})
    assert status == 200 and base64.b64decode(dec["plaintext"]) == b"4111 1111"

    ec = create_key(kube_api, token, "team-a", "signer", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    msg = {"data": b64(b"release v1"), "signingAlgorithm": "ECDSA_SHA_256"}
    status, sig = kube_api.call("POST", f"{KEYS}/{ec['id']}/sign", token, msg)
    assert status == 200, sig
    signed = {**msg, "signature": sig["signature"]}
    status, ok = kube_api.call("POST", f"{KEYS}/{ec['id']}/verify", token, signed)
    assert status == 200 and ok["signatureValid"] is True
    bad = {**msg, "data": b64(b"release v2"), "signature": sig["signature"]}
    assert kube_api.call("POST", f"{KEYS}/{ec['id']}/verify", token, bad)[1]["signatureValid"] is False

    # Reads are served from the cache: by id, by name and listed.
    assert kube_api.call("GET", f"{KEYS}/{aes['id']}", token)[1]["key"]["name"] == "payments"
    assert kube_api.call("GET", f"{KEYS}/key-name/signer?projectId=team-a", token)[1]["key"]["id"] == ec["id"]
    status, listed = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
    assert status == 200 and [k["name"] for k in listed["keys"]] == ["payments", "signer"]
    assert listed["totalCount"] == 2


def test_token_of_another_namespace_is_denied_and_bad_tokens_refused(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    owner = team(kube_cluster, "team-a")
    intruder = team(kube_cluster, "team-b")
    key = create_key(kube_api, owner, "team-a", "payments")

    status, body = kube_api.call("POST", f"{KEYS}/{key['id']}/encrypt", intruder, {"plaintext": b64(b"x")})
    assert status == 403, body
    assert body["error"] == "PermissionDenied" and body["message"] == "You are not allowed to encrypt on cmek"
    status, body = kube_api.call("GET", f"{KEYS}?projectId=team-a", intruder)
    assert status == 403 and body["message"] == "You are not allowed to read on cmek"
    status, body = kube_api.call("POST", KEYS, intruder, {"projectId": "team-a", "name": "sneaky"})
    assert status == 403 and body["message"] == "You are not allowed to create on cmek"
    assert kube_cluster.get(KMSKEYS, "team-a", "sneaky") is None

    status, body = kube_api.call("GET", f"{KEYS}/{key['id']}", "not-a-serviceaccount-token")
    assert status == 403 and body["error"] == "TokenError"
    status, body = kube_api.call("GET", f"{KEYS}/{key['id']}")
    assert status == 401 and body["message"] == "Token missing"

    # The reviews asked the mapped verbs in the key's namespace with its name.
    sars = [r for r in kube_cluster.rbac.reviews if r["kind"] == "SubjectAccessReview"]
    assert any(
        r.get("verb") == "encrypt" and r.get("namespace") == "team-a" and r.get("name") == "payments"
        and r["user"] == "system:serviceaccount:team-b:app"
        for r in sars
    )


def test_api_created_key_is_a_ready_kmskey_with_sealed_material(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    key = create_key(kube_api, token, "team-a", "mac",
                     keyUsage="generate-verify-mac", algorithm="HMAC_SHA_256")
    obj = ready(kube_cluster, "team-a", "mac")()
    assert obj is not None
    assert obj["spec"]["keyUsage"] == "generate-verify-mac" and obj["spec"]["algorithm"] == "HMAC_SHA_256"
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key['id']}")
    assert secret is not None and "version-1" in secret["data"]
    # Sealed, not raw: a 32-byte HMAC key would be 44 base64 characters.
    assert len(base64.b64decode(secret["data"]["version-1"])) > 32

    status, body = kube_api.call("POST", KEYS, token, {"projectId": "team-a", "name": "mac"})
    assert status == 400 and "already exists" in body["message"]


def test_update_rename_and_delete(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    key = create_key(kube_api, token, "team-a", "payments")
    path = f"{KEYS}/{key['id']}"

    status, body = kube_api.call("PATCH", path, token, {"description": "new", "isDisabled": True})
    assert status == 200, body
    assert body["key"]["description"] == "new" and body["key"]["isDisabled"] is True
    obj = kube_cluster.get(KMSKEYS, "team-a", "payments")
    assert obj is not None and obj["spec"]["disabled"] is True and obj["spec"]["description"] == "new"
    status, body = kube_api.call("POST", f"{path}/encrypt", token, {"plaintext": b64(b"x")})
    assert status == 400 and body["message"] == "Key is disabled"

    status, body = kube_api.call("PATCH", path, token, {"name": "renamed"})
    assert status == 400
    assert body["message"] == (
        "Renaming a key is not supported in Kubernetes mode: the key name is the KmsKey object's name"
    )

    status, body = kube_api.call("DELETE", path, token)
    assert status == 200, kube_api.log()[-3000:]
    assert body["key"]["id"] == key["id"] and body["key"]["name"] == "payments"
    assert kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "team-a", "payments") is None, timeout=30)
    status, body = kube_api.call("GET", path, token)
    assert status == 404 and body["message"] == f'Key with ID "{key["id"]}" not found'


def test_rotate_bumps_version_and_old_ciphertexts_decrypt(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    key = create_key(kube_api, token, "team-a", "payments")
    path = f"{KEYS}/{key['id']}"
    old = kube_api.call("POST", f"{path}/encrypt", token, {"plaintext": b64(b"before")})[1]["ciphertext"]

    status, body = kube_api.call("POST", f"{path}/rotate", token)
    assert status == 200, body
    assert body["key"]["version"] == 2
    assert body["key"]["updatedAt"] == key["updatedAt"]  # as Infisical: rotation leaves the row alone
    obj = kube_cluster.get(KMSKEYS, "team-a", "payments")
    assert obj is not None and obj["status"]["version"] == 2
    secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key['id']}")
    assert secret is not None and {"version-1", "version-2"} <= set(secret["data"])

    new = kube_api.call("POST", f"{path}/encrypt", token, {"plaintext": b64(b"after")})[1]["ciphertext"]
    assert base64.b64decode(new).endswith(b"v02") and base64.b64decode(old).endswith(b"v01")
    for ct, plain in ((old, b"before"), (new, b"after")):
        status, dec = kube_api.call("POST", f"{path}/decrypt", token, {"ciphertext": ct})
        assert status == 200 and base64.b64decode(dec["plaintext"]) == plain
    assert kube_api.call("GET", path, token)[1]["key"]["version"] == 2


def test_api_started_before_the_operator(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess],
    kube_api_factory: Callable[..., ApiProcess],
) -> None:
    token = team(kube_cluster, "team-a")
    api = kube_api_factory(KUBEKMS_KUBE_READY_TIMEOUT="3").start()
    # No operator yet: creation is recorded but times out with a clear 504.
    status, body = api.call("POST", KEYS, token, {"projectId": "team-a", "name": "early"})
    assert status == 504, body
    assert "operator" in body["message"] and "team-a/early" in body["message"]
    assert kube_cluster.get(KMSKEYS, "team-a", "early") is not None

    kube_operator_factory().start()
    kube_cluster.wait_for(ready(kube_cluster, "team-a", "early"), timeout=30)
    status, body = api.call("GET", f"{KEYS}/key-name/early?projectId=team-a", token)
    assert status == 200, body
    key_id = body["key"]["id"]
    status, enc = api.call("POST", f"{KEYS}/{key_id}/encrypt", token, {"plaintext": b64(b"late")})
    assert status == 200, enc
    later = create_key(api, token, "team-a", "later")
    assert later["version"] == 1


def test_watch_dropped_cache_recovers(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    key = create_key(kube_api, token, "team-a", "payments")
    assert kube_cluster.cut_watches() >= 2  # the API's two watches (and the operator's)
    # Changes made while the watches are down reach the cache once it relists.
    kube_cluster.patch(KMSKEYS, "team-a", "payments", {"spec": {"description": "changed behind the API"}})
    kube_cluster.create(KMSKEYS, {"metadata": {"name": "kubectl-made"},
                                  "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"}},
                        namespace="team-a")
    kube_cluster.wait_for(ready(kube_cluster, "team-a", "kubectl-made"), timeout=30,
                          message=f"the operator did not recover its watch:\n{kube_operator.log()[-3000:]}")

    def listed() -> list[str] | None:
        status, body = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
        names = [k["name"] for k in body["keys"]] if status == 200 else []
        return names if "kubectl-made" in names else None

    assert kube_cluster.wait_for(listed, timeout=20) == ["kubectl-made", "payments"]
    status, body = kube_api.call("GET", f"{KEYS}/{key['id']}", token)
    assert status == 200 and body["key"]["description"] == "changed behind the API"


def test_token_review_unavailable_is_503_and_recovers(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    kube_cluster.fail(30, status=503, path="tokenreviews")
    status, body = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
    assert status == 503, body
    assert body["statusCode"] == 503 and token not in str(body)
    kube_cluster.heal()
    status, body = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
    assert status == 200, body


def test_api_server_unavailable_on_create_is_503(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    create_key(kube_api, token, "team-a", "warm")  # warms the caches and the token review
    kube_cluster.fail(30, status=503, path="/namespaces/team-a/kmskeys")
    status, body = kube_api.call("POST", KEYS, token, {"projectId": "team-a", "name": "cold"})
    assert status == 503, body
    kube_cluster.heal()
    assert create_key(kube_api, token, "team-a", "cold")["name"] == "cold"


def test_bulk_import_is_refused_per_entry(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster, "team-a")
    create_key(kube_api, token, "team-a", "taken")
    aes = {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm", "keyMaterial": b64(os.urandom(32))}
    entries = [{"name": "restored", **aes}, {"name": "taken", **aes}]
    request = {"projectId": "team-a", "keys": entries}
    status, body = kube_api.call("POST", f"{KEYS}/bulk-import", token, request)
    assert status == 200, body
    assert body["keys"] == []
    errors = {e["name"]: e["message"] for e in body["errors"]}
    assert errors["restored"].startswith("Importing key material is not supported in Kubernetes mode")
    assert errors["taken"] == 'A key with the name "taken" already exists in this project'
    assert kube_cluster.get(KMSKEYS, "team-a", "restored") is None
    assert not [s for s in kube_cluster.list(SECRETS, KUBEKMS_NAMESPACE) if "restored" in str(s["metadata"])]


BAD_NAMESPACES = ["../kube-system", "team-a/secrets", "team%2Fa", "Team-A", "team.a", "-team", "team-",
                  "a" * 64, "team a", "team-a?x=1"]


def test_project_must_be_a_namespace_name_before_it_reaches_the_api_server(
    kube_cluster: Cluster, kube_api: ApiProcess
) -> None:
    """A projectId that is not an RFC 1123 label is a 422 in the spec's shape for every route that
    takes one, even for a caller allowed everything everywhere, and nothing is asked about it."""
    kube_cluster.ensure_namespace("team-a")
    token = kube_cluster.rbac.add_service_account("team-a", "admin")
    kube_cluster.rbac.allow("system:serviceaccount:team-a:admin", ["*"])  # every namespace
    material = b64(bytes(32))
    entry = {"name": "imp", "keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm",
             "keyMaterial": material}
    assert kube_cluster.emulator is not None
    seen = len(list(kube_cluster.emulator))
    for project in BAD_NAMESPACES:
        q = urllib.parse.quote(project, safe="")
        for method, path, body in (
            ("POST", KEYS, {"projectId": project, "name": "k"}),
            ("GET", f"{KEYS}?projectId={q}", None),
            ("GET", f"{KEYS}/key-name/k?projectId={q}", None),
            ("POST", f"{KEYS}/bulk-import", {"projectId": project, "keys": [entry]}),
        ):
            status, reply = kube_api.call(method, path, token, body)
            assert status == 422, (project, path, reply)
            assert set(reply) == {"reqId", "statusCode", "message", "error"}
            assert (reply["statusCode"], reply["error"]) == (422, "ValidationFailure")
            [issue] = reply["message"]
            assert issue["path"] == ["projectId"] and "Kubernetes namespace name" in issue["message"]
            if len(project) > 3:
                assert project not in issue["message"]
    # The API asked the API server nothing about those projects (only the one TokenReview).
    asked = [r for r in list(kube_cluster.emulator)[seen:] if "subjectaccessreviews" in r.url.path
             or ("/namespaces/" in r.url.path and "kmskeys" in r.url.path)]
    assert asked == []
    # A namespace name still works, the project rule is not a blanket refusal.
    status, reply = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
    assert status == 200 and reply == {"keys": [], "totalCount": 0}


def test_token_audience_is_required_when_configured(
    kube_cluster: Cluster, kube_api_factory: Callable[..., ApiProcess]
) -> None:
    """With KUBEKMS_TOKEN_AUDIENCE the API accepts projected tokens for that audience only: the
    Pod's default token (audience: the API server) is refused like an invalid token."""
    api = kube_api_factory(KUBEKMS_TOKEN_AUDIENCE="kubekms").start()
    kube_cluster.ensure_namespace("team-a")
    kube_cluster.rbac.allow("system:serviceaccount:team-a:app", ["list"], namespace="team-a")
    projected = kube_cluster.rbac.add_service_account("team-a", "app", audiences=["kubekms"])
    default = kube_cluster.rbac.add_service_account("team-a", "app")
    other = kube_cluster.rbac.add_service_account("team-a", "app", audiences=["vault"])
    status, body = api.call("GET", f"{KEYS}?projectId=team-a", projected)
    assert status == 200, body
    for token in (default, other):
        status, body = api.call("GET", f"{KEYS}?projectId=team-a", token)
        assert status == 403 and body["error"] == "TokenError", body
    reviews = [r for r in kube_cluster.rbac.reviews if r["kind"] == "TokenReview"]
    assert reviews and all(r["audiences"] == ["kubekms"] for r in reviews)


def test_spent_failed_auth_budget_sends_no_more_token_reviews(
    kube_cluster: Cluster, kube_api_factory: Callable[..., ApiProcess]
) -> None:
    """Kubernetes mode: once an address has spent its failed-authentication budget, it gets 429
    and the API server receives no further TokenReview for it, whatever token it presents."""
    api = kube_api_factory(KUBEKMS_AUTH_FAIL_BURST="3", KUBEKMS_AUTH_FAIL_RATE="0.001").start()
    valid = team(kube_cluster, "team-a")

    def token_reviews() -> int:
        return sum(1 for r in kube_cluster.rbac.reviews if r["kind"] == "TokenReview")

    before = token_reviews()
    statuses = [api.call("GET", f"{KEYS}?projectId=team-a", f"guess-{i}")[0] for i in range(3)]
    assert statuses == [403, 403, 403]
    assert token_reviews() == before + 3
    for token in ("guess-3", "guess-4", valid, "guess-5"):
        status, body = api.call("GET", f"{KEYS}?projectId=team-a", token)
        assert status == 429, body
        assert set(body) == {"reqId", "statusCode", "message", "error"}
        assert body["error"] == "RateLimitExceeded" and token not in str(body)
    assert token_reviews() == before + 3
