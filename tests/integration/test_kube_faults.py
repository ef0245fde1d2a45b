"""Kubernetes mode when its dependency misbehaves: the API server failing, slow, dropping watches,
and its TokenReview / SubjectAccessReview APIs unavailable.

The real operator and API processes run against the emulated API server, whose fault injection
answers 503 (or holds requests) for a while. Expected behaviour (README "Run on Kubernetes"):
warm keys keep serving from the caches; writes fail with a bounded 503, never 500 and never hang;
the operator backs off and converges after the fault with exactly one material per key; watches
resync; authentication and authorisation fail closed.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fixtures.kube import OperatorProcess
from fixtures.kube_api import ApiProcess
from kms_core.sealing.rootkey import RootKeySealer
from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import kmskey, material_secrets, seed_ready_key, unseal_all, wait_ready

KEYS = "/api/v1/kms/keys"
ALL_VERBS = ["get", "list", "create", "update", "delete", "encrypt", "decrypt", "sign", "verify", "rotate"]
TOKEN_REVIEWS = "/tokenreviews$"
ACCESS_REVIEWS = "/subjectaccessreviews$"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def team(cluster: Cluster, namespace: str = "team-a", verbs: list[str] = ALL_VERBS) -> str:
    """A fresh ServiceAccount token allowed `verbs` on kmskeys in `namespace`."""
    cluster.ensure_namespace(namespace)
    name = f"app-{uuid.uuid4().hex[:6]}"
    token = cluster.rbac.add_service_account(namespace, name)
    cluster.rbac.allow(f"system:serviceaccount:{namespace}:{name}", verbs, namespace=namespace)
    return token


def create_key(api: ApiProcess, token: str, name: str, **extra: Any) -> dict[str, Any]:
    status, body = api.call("POST", KEYS, token, {"projectId": "team-a", "name": name, **extra})
    assert status == 200, body
    return dict(body["key"])


def seed(cluster: Cluster, root_key: str, name: str) -> str:
    """A Ready AES key laid out as the operator leaves it (KmsKey + status, sealed Secret)."""
    return seed_ready_key(cluster, RootKeySealer.from_base64(root_key), "team-a", name)


def round_trip(api: ApiProcess, token: str, key_id: str, plaintext: bytes = b"warm") -> int:
    """encrypt then decrypt; the first non-200 status, or 200."""
    status, enc = api.call("POST", f"{KEYS}/{key_id}/encrypt", token, {"plaintext": b64(plaintext)})
    if status != 200:
        return status
    status, dec = api.call("POST", f"{KEYS}/{key_id}/decrypt", token, enc)
    assert status != 200 or base64.b64decode(dec["plaintext"]) == plaintext
    return status


def unavailable(status: int, body: Any, token: str) -> bool:
    return status == 503 and body["statusCode"] == 503 and token not in str(body)


def data_versions(cluster: Cluster, name: str) -> list[dict[str, str]]:
    """The distinct `data` contents a material Secret has ever had, in order."""
    seen: list[dict[str, str]] = []
    for version in cluster.history(SECRETS, KUBEKMS_NAMESPACE, name):
        if version is not None and (not seen or seen[-1] != version.get("data")):
            seen.append(dict(version.get("data") or {}))
    return seen


def test_api_server_503_warm_keys_serve_writes_fail_and_the_operator_converges(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api_factory: Callable[..., ApiProcess],
    kube_root_key: str,
) -> None:
    api = kube_api_factory(KUBEKMS_AUTH_CACHE_TTL="60").start()
    token = team(kube_cluster)
    warm = create_key(api, token, "warm")
    signer = create_key(api, token, "signer", keyUsage="sign-verify", algorithm="ECC_NIST_P256")
    msg = {"data": b64(b"release"), "signingAlgorithm": "ECDSA_SHA_256"}
    assert round_trip(api, token, warm["id"]) == 200
    status, sig = api.call("POST", f"{KEYS}/{signer['id']}/sign", token, msg)
    assert status == 200
    assert api.call("POST", f"{KEYS}/{signer['id']}/verify", token, {**msg, **sig})[0] == 200
    # Warm the decisions a write needs too, so a 503 below comes from the key store, not the reviewer.
    assert api.call("PATCH", f"{KEYS}/{warm['id']}", token, {"description": "before"})[0] == 200
    assert api.call("POST", f"{KEYS}/{warm['id']}/rotate", token)[1]["key"]["version"] == 2
    kube_cluster.create(KMSKEYS, kmskey("rotated"), "team-a")
    wait_ready(kube_cluster, "rotated", "team-a")

    kube_cluster.fail(15, status=503)
    # Changes made meanwhile (kubectl through another API server replica, say) reach the operator
    # through its open watch; every request it then makes fails.
    kube_cluster.create(KMSKEYS, kmskey("during"), "team-a")
    rotate = {"metadata": {"annotations": {"kubekms.io/rotate": "2"}}}
    kube_cluster.patch(KMSKEYS, "team-a", "rotated", rotate)
    kube_cluster.wait_for(lambda: any("/kmskeys/during" in h for h in kube_cluster.fault_hits), 5,
                          message="the operator never tried to reconcile during the outage")
    kube_cluster.cut_watches()  # and every watch reconnect meets the outage
    for _ in range(3):
        assert round_trip(api, token, warm["id"]) == 200
        status, sig = api.call("POST", f"{KEYS}/{signer['id']}/sign", token, msg)
        assert status == 200, sig
        status, ok = api.call("POST", f"{KEYS}/{signer['id']}/verify", token, {**msg, **sig})
        assert status == 200 and ok["signatureValid"] is True
    writes = [
        ("POST", KEYS, {"projectId": "team-a", "name": "cold"}),
        ("PATCH", f"{KEYS}/{warm['id']}", {"description": "during the outage"}),
        ("POST", f"{KEYS}/{warm['id']}/rotate", None),
    ]
    for method, path, body in writes:
        started = time.monotonic()
        status, answer = api.call(method, path, token, body, timeout=30)
        assert unavailable(status, answer, token), (method, path, status, answer)
        assert time.monotonic() - started < 5
    stored = kube_cluster.get(KMSKEYS, "team-a", "warm")
    assert stored is not None and stored["spec"]["description"] == "before"
    assert stored["metadata"]["annotations"]["kubekms.io/rotate"] == "2"  # the request made before
    assert not any("subjectaccessreviews" in h for h in kube_cluster.fault_hits)  # all from the cache
    assert kube_cluster.get(KMSKEYS, "team-a", "cold") is None

    # The operator retries (Kopf's and its own backoff) rather than giving up or spinning.
    def attempts() -> int:
        return sum(h.endswith("/kmskeys/during") for h in kube_cluster.fault_hits)

    time.sleep(3)
    assert 2 <= attempts() <= 12, kube_cluster.fault_hits
    kube_cluster.heal()
    during = wait_ready(kube_cluster, "during", "team-a", timeout=40)
    rotated = wait_ready(kube_cluster, "rotated", "team-a", version=2, timeout=40)
    for key, versions in ((during, [1]), (rotated, [1, 2])):
        name = f"kmskey-{key['status']['keyId']}"
        secret = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, name)
        assert secret is not None and list(unseal_all(kube_root_key, key, secret)) == versions
        history = data_versions(kube_cluster, name)
        assert len(history) == len(versions), "material was replaced or a version made twice"
        assert all(h["version-1"] == history[0]["version-1"] for h in history)
    assert len(material_secrets(kube_cluster)) == 4  # warm, signer, rotated, during: one each

    # Writes work again after heal().
    assert create_key(api, token, "cold")["version"] == 1
    status, body = api.call("PATCH", f"{KEYS}/{warm['id']}", token, {"description": "after"})
    assert status == 200 and body["key"]["description"] == "after"
    status, body = api.call("POST", f"{KEYS}/{warm['id']}/rotate", token)
    assert status == 200 and body["key"]["version"] == 3, body
    assert round_trip(api, token, warm["id"]) == 200


def test_slow_api_server_bounds_writes_while_warm_keys_stay_fast(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api_factory: Callable[..., ApiProcess]
) -> None:
    kube_api = kube_api_factory(KUBEKMS_AUTH_CACHE_TTL="60").start()
    token = team(kube_cluster)
    key = create_key(kube_api, token, "warm")
    assert round_trip(kube_api, token, key["id"]) == 200

    # Slow but within the client's timeout: writes succeed, just late.
    kube_cluster.slow(30, delay=1.0)
    started = time.monotonic()
    status, body = kube_api.call("PATCH", f"{KEYS}/{key['id']}", token, {"description": "slow"})
    assert status == 200 and body["key"]["description"] == "slow", body
    assert time.monotonic() - started >= 1.0

    # Slower than the API's Kubernetes request timeout (10 s): a bounded 503, not a hang. Warm
    # requests meanwhile cost no API-server round trip and stay fast.
    kube_cluster.slow(30, delay=25, path=r"/namespaces/team-a/kmskeys")
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(kube_api.call, "POST", KEYS, token, {"projectId": "team-a", "name": "cold"})
        while not pending.done():
            fast = time.monotonic()
            assert round_trip(kube_api, token, key["id"]) == 200
            assert time.monotonic() - fast < 1.0
            time.sleep(0.5)
        status, body = pending.result()
    assert unavailable(status, body, token), body
    assert time.monotonic() - started < 15
    kube_cluster.heal()
    assert create_key(kube_api, token, "cold")["name"] == "cold"


def test_operator_requests_timing_out_are_retried_promptly(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess], kube_root_key: str
) -> None:
    # Requests slower than the operator's timeout end in TimeoutError; they must be retried like a
    # 503 (seconds), not as an unknown error (Kopf's 60 s default backoff).
    kube_cluster.ensure_namespace("team-a")
    kube_operator_factory(KUBEKMS_REQUEST_TIMEOUT="2").start()
    kube_cluster.slow(60, delay=4, path=f"/namespaces/{KUBEKMS_NAMESPACE}/secrets", method="GET")
    kube_cluster.create(KMSKEYS, kmskey("slow"), "team-a")
    kube_cluster.wait_for(lambda: len(kube_cluster.fault_hits) >= 2, 15, message="the operator did not retry")
    kube_cluster.heal()
    key = wait_ready(kube_cluster, "slow", "team-a", timeout=15)
    secrets = material_secrets(kube_cluster)
    assert [s["metadata"]["name"] for s in secrets] == [f"kmskey-{key['status']['keyId']}"]
    assert list(unseal_all(kube_root_key, key, secrets[0])) == [1]


def test_deletion_during_an_outage_completes_soon_after_heal(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.ensure_namespace("team-a")
    kube_cluster.create(KMSKEYS, kmskey("doomed", deletionPolicy="Delete"), "team-a")
    key = wait_ready(kube_cluster, "doomed", "team-a")
    secret = f"kmskey-{key['status']['keyId']}"
    kube_cluster.fail(60, status=503, path=f"/namespaces/{KUBEKMS_NAMESPACE}/secrets/")
    kube_cluster.delete(KMSKEYS, "team-a", "doomed")  # the finalizer holds it for the operator
    kube_cluster.wait_for(lambda: kube_cluster.fault_hits, 10, message="the operator did not try")
    assert kube_cluster.get(KMSKEYS, "team-a", "doomed") is not None
    kube_cluster.heal()
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "team-a", "doomed") is None, 15,
                          message="the finalizer was not released soon after the outage")
    # deletionPolicy Delete keeps the material for the recovery window, marked for the purge.
    kept = kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, secret)
    assert kept is not None and kept["metadata"]["labels"].get("kubekms.io/deleted") == "true"
    assert kept["metadata"]["annotations"].get("kubekms.io/purge-at")


def test_watches_cut_repeatedly_resync_the_api_cache(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    token = team(kube_cluster)
    base = create_key(kube_api, token, "base")
    assert round_trip(kube_api, token, base["id"]) == 200
    cuts = []
    for i in range(6):
        cuts.append(kube_cluster.cut_watches())
        if i == 1:
            kube_cluster.create(KMSKEYS, kmskey("made"), "team-a")
        if i == 3:
            kube_cluster.patch(KMSKEYS, "team-a", "base", {"spec": {"disabled": True}})
        time.sleep(0.3)
    assert cuts[0] >= 3 and sum(cuts[1:]) >= 1, cuts  # the API's two watches, the operator's; reconnects

    def listed() -> list[str] | None:
        status, body = kube_api.call("GET", f"{KEYS}?projectId=team-a", token)
        names = [k["name"] for k in body["keys"]] if status == 200 else []
        return names if "made" in names else None

    assert kube_cluster.wait_for(listed, timeout=15) == ["base", "made"]

    def disabled() -> bool:
        status, body = kube_api.call("POST", f"{KEYS}/{base['id']}/encrypt", token, {"plaintext": b64(b"x")})
        assert status in (200, 400), body
        return status == 400 and body["message"] == "Key is disabled"

    kube_cluster.wait_for(disabled, timeout=10, message="disabling behind the API was not enforced")
    kube_cluster.patch(KMSKEYS, "team-a", "base", {"spec": {"disabled": False}})
    kube_cluster.cut_watches()
    kube_cluster.wait_for(lambda: round_trip(kube_api, token, base["id"]) == 200, timeout=10)


def test_token_review_unavailable_fails_closed(
    kube_cluster: Cluster, kube_api_factory: Callable[..., ApiProcess], kube_root_key: str
) -> None:
    api = kube_api_factory(KUBEKMS_AUTH_CACHE_TTL="3").start()
    key_id = seed(kube_cluster, kube_root_key, "payments")
    warm, fresh = team(kube_cluster), team(kube_cluster)
    assert round_trip(api, warm, key_id) == 200

    kube_cluster.fail(60, status=503, path=TOKEN_REVIEWS)
    assert round_trip(api, warm, key_id) == 200  # a review still within its TTL may be reused
    for token in (fresh, "not-a-serviceaccount-token"):
        status, body = api.call("POST", f"{KEYS}/{key_id}/encrypt", token, {"plaintext": b64(b"x")})
        assert unavailable(status, body, token), body
    time.sleep(3.2)  # the warm token's review expires: no longer trusted while the reviewer is down
    status, body = api.call("POST", f"{KEYS}/{key_id}/encrypt", warm, {"plaintext": b64(b"x")})
    assert unavailable(status, body, warm), body
    assert sum(h.endswith("/tokenreviews") for h in kube_cluster.fault_hits) >= 3

    kube_cluster.heal()
    assert round_trip(api, fresh, key_id) == 200 and round_trip(api, warm, key_id) == 200
    status, body = api.call("GET", f"{KEYS}/{key_id}", "not-a-serviceaccount-token")
    assert status == 403 and body["error"] == "TokenError"


def test_access_review_unavailable_fails_closed(
    kube_cluster: Cluster, kube_api_factory: Callable[..., ApiProcess], kube_root_key: str
) -> None:
    api = kube_api_factory(KUBEKMS_AUTH_CACHE_TTL="3").start()
    key_id = seed(kube_cluster, kube_root_key, "payments")
    other_id = seed(kube_cluster, kube_root_key, "other")
    warm, fresh = team(kube_cluster), team(kube_cluster)
    reader = team(kube_cluster, verbs=["get"])
    plain = {"plaintext": b64(b"x")}
    status, enc = api.call("POST", f"{KEYS}/{key_id}/encrypt", warm, plain)
    assert status == 200
    assert api.call("GET", f"{KEYS}/{key_id}", fresh)[0] == 200  # its TokenReview is cached, not its verbs

    kube_cluster.fail(60, status=503, path=ACCESS_REVIEWS)
    assert api.call("POST", f"{KEYS}/{key_id}/encrypt", warm, plain)[0] == 200  # cached decision
    refused = [
        (warm, f"{KEYS}/{key_id}/decrypt", enc),      # an action not decided before
        (warm, f"{KEYS}/{other_id}/encrypt", plain),  # another key
        (fresh, f"{KEYS}/{key_id}/encrypt", plain),   # another identity
        (reader, f"{KEYS}/{key_id}/encrypt", plain),  # one RBAC would deny anyway
    ]
    for token, path, body in refused:
        status, answer = api.call("POST", path, token, body)
        assert unavailable(status, answer, token), (path, answer)
    time.sleep(3.2)
    status, answer = api.call("POST", f"{KEYS}/{key_id}/encrypt", warm, plain)
    assert unavailable(status, answer, warm), answer

    kube_cluster.heal()
    for token, path, body in refused[:3]:
        assert api.call("POST", path, token, body)[0] == 200, path
    status, answer = api.call("POST", f"{KEYS}/{key_id}/encrypt", reader, plain)
    assert status == 403 and answer["error"] == "PermissionDenied"
