"""The Vault Transit dialect in Kubernetes mode: the real API and operator processes against the
emulated API server, called with ServiceAccount tokens (directly and through Vault's
`auth/kubernetes/login`) over loopback HTTP, with RBAC and namespace isolation as the Infisical
routes have them. A `KmsKey` `team-a/orders` is the transit key `orders` of `X-Vault-Namespace:
team-a`.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from fixtures.api import ADMIN, Api
from fixtures.kube import OperatorProcess
from fixtures.kube_api import ApiProcess
from kube import KMSKEYS, Cluster

LOGIN = "/v1/auth/kubernetes/login"
TRANSIT_VERBS = ["get", "list", "create", "encrypt", "decrypt"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vault(
    api: ApiProcess, method: str, path: str, body: Any = None, *, namespace: str | None = None,
    token: str | None = None, bearer: str | None = None,
) -> tuple[int, Any]:
    """One Vault-style request: the token as `X-Vault-Token` (or `Authorization: Bearer`)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, method=method)
    if namespace is not None:
        request.add_header("X-Vault-Namespace", namespace)
    if token is not None:
        request.add_header("X-Vault-Token", token)
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def account(cluster: Cluster, namespace: str, name: str, verbs: list[str]) -> str:
    cluster.ensure_namespace(namespace)
    token = cluster.rbac.add_service_account(namespace, name)
    cluster.rbac.allow(f"system:serviceaccount:{namespace}:{name}", verbs, namespace=namespace)
    return token


def kmskey(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1", "kind": "KmsKey", "metadata": {"name": name},
        "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"},
    }


def ready(cluster: Cluster, namespace: str, name: str) -> Any:
    def probe() -> dict[str, Any] | None:
        obj = cluster.get(KMSKEYS, namespace, name)
        conds = (obj or {}).get("status", {}).get("conditions", [])
        return obj if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None

    return probe


def test_kmskey_is_the_transit_key_and_kubernetes_login_acts_as_the_serviceaccount(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api_factory: Any
) -> None:
    # No review cache: a revoked ServiceAccount token is refused on the next request.
    api: ApiProcess = kube_api_factory(KUBEKMS_AUTH_CACHE_TTL="0").start()
    token = account(kube_cluster, "team-a", "app", TRANSIT_VERBS)
    kube_cluster.create(KMSKEYS, kmskey("orders"), namespace="team-a")
    obj = kube_cluster.wait_for(ready(kube_cluster, "team-a", "orders"), timeout=30)

    status, read = vault(api, "GET", "/v1/transit/keys/orders", namespace="team-a", bearer=token)
    assert status == 200, read
    assert read["data"]["name"] == "orders" and read["data"]["type"] == "aes256-gcm96"
    status, listed = vault(api, "GET", "/v1/transit/keys?list=true", namespace="team-a", token=token)
    assert status == 200 and listed["data"]["keys"] == ["orders"]

    # Bearer and X-Vault-Token carry the same ServiceAccount token.
    status, enc = vault(api, "POST", "/v1/transit/encrypt/orders", {"plaintext": b64(b"pizza")},
                        namespace="team-a", bearer=token)
    assert status == 200, enc
    assert enc["data"]["ciphertext"].startswith("vault:v1:") and enc["data"]["key_version"] == 1
    status, dec = vault(api, "POST", "/v1/transit/decrypt/orders", {"ciphertext": enc["data"]["ciphertext"]},
                        namespace="team-a", token=token)
    assert status == 200 and base64.b64decode(dec["data"]["plaintext"]) == b"pizza"

    # The same key through the Infisical routes (by the KmsKey's key id).
    status, by_name = api.call("GET", "/api/v1/kms/keys/key-name/orders?projectId=team-a", token)
    assert status == 200 and by_name["key"]["id"] == obj["status"]["keyId"]

    # Vault's Kubernetes auth: role + ServiceAccount JWT -> a client token.
    status, login = vault(api, "POST", LOGIN, {"role": "orders-app", "jwt": token})
    assert status == 200, login
    auth = login["auth"]
    assert login["data"] is None and auth["token_type"] == "service" and auth["renewable"] is False
    assert auth["policies"] == ["default"] and auth["token_policies"] == ["default"]
    assert auth["metadata"] == {
        "role": "orders-app", "service_account_name": "app", "service_account_namespace": "team-a",
        "service_account_secret_name": "", "service_account_uid": kube_cluster.rbac.uid_of(token),
    }
    assert auth["entity_id"] == kube_cluster.rbac.uid_of(token)
    assert 3590 <= auth["lease_duration"] <= 3600
    client_token = auth["client_token"]
    assert client_token != token and token not in client_token and auth["accessor"] not in ("", client_token)

    for header in ("token", "bearer"):
        sealed = {"ciphertext": enc["data"]["ciphertext"]}
        status, dec = vault(api, "POST", "/v1/transit/decrypt/orders", sealed,
                            namespace="team-a", **{header: client_token})
        assert status == 200 and base64.b64decode(dec["data"]["plaintext"]) == b"pizza", dec
    # It acts as the ServiceAccount: the SubjectAccessReview names it.
    sars = [r for r in kube_cluster.rbac.reviews if r["kind"] == "SubjectAccessReview"]
    assert sars[-1]["user"] == "system:serviceaccount:team-a:app" and sars[-1]["verb"] == "decrypt"
    # The Infisical routes accept it too (one token, both dialects).
    status, _ = api.call("GET", "/api/v1/kms/keys/key-name/orders?projectId=team-a", client_token)
    assert status == 200

    # Vault's answers for bad logins; a forged or altered token is `permission denied`.
    assert vault(api, "POST", LOGIN, {"jwt": token}) == (400, {"errors": ["missing role"]})
    assert vault(api, "POST", LOGIN, {"role": "r"}) == (400, {"errors": ["missing jwt"]})
    assert vault(api, "POST", LOGIN, {"role": "r", "jwt": "sa-not-a-token"}) == (
        403, {"errors": ["permission denied"]}
    )
    assert vault(api, "POST", LOGIN, {"role": "r", "jwt": client_token})[0] == 403  # not re-exchangeable
    unsupported = {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}
    assert vault(api, "GET", LOGIN, token=token) == (405, unsupported)
    tampered = client_token[:-3] + ("AAA" if not client_token.endswith("AAA") else "BBB")
    expiry, rest = client_token[len("kkv1."):].split(".", 1)
    extended = f"kkv1.{int(expiry) + 86400}.{rest}"
    for forged in (tampered, extended):
        status, body = vault(api, "POST", "/v1/transit/encrypt/orders", {"plaintext": b64(b"x")},
                             namespace="team-a", token=forged)
        assert (status, body) == (403, {"errors": ["permission denied"]})

    # Revoking the ServiceAccount's token revokes the client token made from it.
    kube_cluster.rbac.revoke(token)
    status, body = vault(api, "POST", "/v1/transit/encrypt/orders", {"plaintext": b64(b"x")},
                         namespace="team-a", token=client_token)
    assert (status, body) == (403, {"errors": ["permission denied"]})
    assert "kkv1." not in api.log() and token not in api.log()


def test_transit_rbac_namespace_isolation_and_create_writes_a_kmskey(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    owner = account(kube_cluster, "team-a", "app", TRANSIT_VERBS)
    reader = account(kube_cluster, "team-a", "reader", ["get", "list"])
    intruder = account(kube_cluster, "team-b", "app", TRANSIT_VERBS)

    # Creating through Transit is the Infisical create: a KmsKey the operator makes ready.
    status, created = vault(kube_api, "POST", "/v1/transit/keys/orders", {"type": "aes256-gcm96"},
                            namespace="team-a", token=owner)
    assert status == 200, created
    assert created["data"]["name"] == "orders" and created["data"]["latest_version"] == 1
    obj = kube_cluster.get(KMSKEYS, "team-a", "orders")
    assert obj is not None and obj["spec"]["algorithm"] == "aes-256-gcm"
    assert ready(kube_cluster, "team-a", "orders")() is not None

    status, enc = vault(kube_api, "POST", "/v1/transit/encrypt/orders", {"plaintext": b64(b"x")},
                        namespace="team-a", token=owner)
    assert status == 200, enc

    # RBAC: without the `encrypt` verb, Vault's 403; reading is allowed.
    assert vault(kube_api, "POST", "/v1/transit/encrypt/orders", {"plaintext": b64(b"x")},
                 namespace="team-a", token=reader) == (403, {"errors": ["permission denied"]})
    assert vault(kube_api, "GET", "/v1/transit/keys/orders", namespace="team-a", token=reader)[0] == 200
    assert vault(kube_api, "POST", "/v1/transit/keys/sneaky", {}, namespace="team-a", token=reader) == (
        403, {"errors": ["permission denied"]}
    )
    assert kube_cluster.get(KMSKEYS, "team-a", "sneaky") is None

    # Namespace isolation: team-b's token (direct or logged in) cannot use team-a's namespace.
    status, login = vault(kube_api, "PUT", LOGIN, {"role": "any", "jwt": intruder})
    assert status == 200 and login["auth"]["metadata"]["service_account_namespace"] == "team-b"
    for creds in ({"token": intruder}, {"bearer": intruder}, {"token": login["auth"]["client_token"]}):
        for path, body in (
            ("/v1/transit/encrypt/orders", {"plaintext": b64(b"x")}),
            ("/v1/transit/decrypt/orders", {"ciphertext": enc["data"]["ciphertext"]}),
        ):
            assert vault(kube_api, "POST", path, body, namespace="team-a", **creds) == (
                403, {"errors": ["permission denied"]}
            ), (path, creds.keys())
        status, _ = vault(kube_api, "GET", "/v1/transit/keys?list=true", namespace="team-a", **creds)
        assert status == 403
    sars = [r for r in kube_cluster.rbac.reviews if r["kind"] == "SubjectAccessReview"]
    assert any(
        r["user"] == "system:serviceaccount:team-b:app" and r.get("namespace") == "team-a"
        and r.get("verb") == "encrypt" and r.get("name") == "orders"
        for r in sars
    )
    # team-b in its own namespace sees no team-a key (an encrypt would create its own).
    status, listed = vault(kube_api, "GET", "/v1/transit/keys?list=true", namespace="team-b", token=intruder)
    assert status == 404, listed


@pytest.mark.asyncio
async def test_embedded_mode_has_no_kubernetes_auth_mount(api: Api) -> None:
    """As OpenBao answers for an auth path that is not mounted: 403 without a token, 404 with."""
    anonymous = await api.call("POST", LOGIN, {"role": "r", "jwt": "x"}, token=None)
    assert (anonymous.status, anonymous.body) == (403, {"errors": ["permission denied"]})
    admin = await api.call("POST", LOGIN, {"role": "r", "jwt": "x"}, token=ADMIN)
    assert (admin.status, admin.body) == (
        404, {"errors": ['no handler for route "auth/kubernetes/login". route entry not found.']}
    )
