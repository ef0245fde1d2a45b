"""Transit's derived and convergent keys in Kubernetes mode (issue 14): the real API and operator
processes against the emulated API server. A derived key created through Transit (or its encrypt
upsert with a `context`) is a KmsKey with `spec.derived`; a KmsKey applied with `derived: true`
is the same key; the operator records the derivation in the material's owner record, which
decides how the API uses the key. The CRD's CEL rules keep both fields as created, and a tenant
can neither use another namespace's derived key nor re-create its own derived key plain.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_kube_transit import account, vault

from fixtures.kube import KUBEKMS_NAMESPACE, OperatorProcess
from fixtures.kube_api import ApiProcess
from kms_core.derivation import MISSING_CONTEXT
from kms_core.ownership import OWNER_RECORD_ANNOTATION, OwnerRecord, open_record
from kms_core.sealing.rootkey import RootKeySealer
from kube import KMSKEYS, SECRETS, Cluster
from kube.compat import ApiError
from kube.kmskeys import condition, kmskey, wait_degraded, wait_ready

VERBS = ["get", "list", "create", "delete", "encrypt", "decrypt", "sign", "verify"]
DENIED = (403, {"errors": ["permission denied"]})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(cluster: Cluster, root_key: str, key_id: str) -> OwnerRecord:
    secret = cluster.get(SECRETS, KUBEKMS_NAMESPACE, f"kmskey-{key_id}")
    assert secret is not None
    notes = secret["metadata"]["annotations"]
    return open_record(notes[OWNER_RECORD_ANNOTATION], key_id, RootKeySealer.from_base64(root_key))


class Transit:
    """Transit calls in one namespace with one ServiceAccount token."""

    def __init__(self, api: ApiProcess, namespace: str, token: str) -> None:
        self.api, self.namespace, self.token = api, namespace, token

    def __call__(
        self, method: str, path: str, body: Any = None, namespace: str | None = None
    ) -> tuple[int, Any]:
        where = namespace or self.namespace
        return vault(self.api, method, f"/v1/transit/{path}", body, namespace=where, token=self.token)

    def encrypt(self, key: str, plaintext: bytes, context: bytes | None) -> str:
        body = {"plaintext": b64(plaintext), **({"context": b64(context)} if context is not None else {})}
        status, out = self("POST", f"encrypt/{key}", body)
        assert status == 200, out
        return str(out["data"]["ciphertext"])

    def decrypt(self, key: str, ciphertext: str, context: bytes | None) -> tuple[int, Any]:
        body = {"ciphertext": ciphertext, **({"context": b64(context)} if context is not None else {})}
        status, out = self("POST", f"decrypt/{key}", body)
        return status, base64.b64decode(out["data"]["plaintext"]) if status == 200 else out


def test_derived_convergent_and_ed25519_keys_through_transit(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess, kube_root_key: str
) -> None:
    t = Transit(kube_api, "team-a", account(kube_cluster, "team-a", "app", VERBS))

    # A derived AES key: a KmsKey with spec.derived, recorded derived with its material.
    status, created = t("POST", "keys/orders", {"derived": True})
    assert status == 200, created
    assert (created["data"]["derived"], created["data"]["kdf"]) == (True, "hkdf_sha256")
    assert created["data"]["convergent_encryption"] is False
    obj = kube_cluster.get(KMSKEYS, "team-a", "orders")
    assert obj is not None and obj["spec"]["derived"] is True and obj["spec"]["convergentEncryption"] is False
    owner = record(kube_cluster, kube_root_key, obj["status"]["keyId"])
    assert (owner.derived, owner.convergent) == (True, False)

    sealed = t.encrypt("orders", b"pizza", b"tenant-1")
    assert t.decrypt("orders", sealed, b"tenant-1") == (200, b"pizza")
    status, wrong = t.decrypt("orders", sealed, b"tenant-2")
    assert status == 400 and "pizza" not in str(wrong), wrong  # another context is another key
    assert t.decrypt("orders", sealed, None) == (400, {"errors": [MISSING_CONTEXT]})
    assert t("POST", "encrypt/orders", {"plaintext": b64(b"x")}) == (400, {"errors": [MISSING_CONTEXT]})
    # Not convergent: the same plaintext and context encrypt differently each time.
    assert t.encrypt("orders", b"pizza", b"tenant-1") != sealed
    # The Infisical routes have no context: a derived key is refused there (400, not served plain).
    infisical = f"/api/v1/kms/keys/{obj['status']['keyId']}/encrypt"
    status, refused = kube_api.call("POST", infisical, t.token, {"plaintext": b64(b"x")})
    assert status == 400 and "context" in refused["message"], refused

    # A convergent ChaCha20 key: equal plaintexts in one context give equal ciphertexts.
    status, created = t("POST", "keys/dedup",
                        {"type": "chacha20-poly1305", "derived": True, "convergent_encryption": True})
    assert status == 200 and created["data"]["convergent_encryption"] is True, created
    obj = kube_cluster.get(KMSKEYS, "team-a", "dedup")
    assert obj is not None and (obj["spec"]["derived"], obj["spec"]["convergentEncryption"]) == (True, True)
    assert record(kube_cluster, kube_root_key, obj["status"]["keyId"]).convergent
    one, two = (t.encrypt("dedup", b"ssn 123", b"people") for _ in range(2))
    assert one == two
    assert t.encrypt("dedup", b"ssn 124", b"people") != one
    assert t.encrypt("dedup", b"ssn 123", b"animals") != one
    assert t.decrypt("dedup", one, b"people") == (200, b"ssn 123")
    assert t.decrypt("dedup", one, b"animals")[0] == 400

    # Encrypting with a missing key and a context creates it derived (Transit's upsert).
    upserted = t.encrypt("auto", b"made on the fly", b"ctx")
    obj = kube_cluster.get(KMSKEYS, "team-a", "auto")
    assert obj is not None and obj["spec"]["derived"] is True
    assert t.decrypt("auto", upserted, b"ctx") == (200, b"made on the fly")
    assert t.decrypt("auto", upserted, b"other")[0] == 400

    # A derived ed25519 key signs with the key pair its context selects.
    status, created = t("POST", "keys/signer", {"type": "ed25519", "derived": True})
    assert status == 200 and created["data"]["derived"] is True, created
    message = {"input": b64(b"release 1.2")}
    status, signed = t("POST", "sign/signer", {**message, "context": b64(b"app-a")})
    assert status == 200, signed
    signature = signed["data"]["signature"]

    def verified(context: bytes) -> bool:
        status, out = t("POST", "verify/signer", {**message, "signature": signature, "context": b64(context)})
        assert status == 200, out
        return bool(out["data"]["valid"])

    assert verified(b"app-a") and not verified(b"app-b")
    status, other = t("POST", "sign/signer", {**message, "context": b64(b"app-b")})
    assert status == 200 and other["data"]["signature"] != signature
    assert t("POST", "sign/signer", message)[0] == 400  # no context

    # Refused before any KmsKey is written: derivation of a kind that cannot derive.
    for name, body in (("rsa", {"type": "rsa-2048", "derived": True}),
                       ("conv-ed", {"type": "ed25519", "derived": True, "convergent_encryption": True}),
                       ("conv-only", {"convergent_encryption": True})):
        status, refused = t("POST", f"keys/{name}", body)
        assert status == 400, (name, refused)
        assert kube_cluster.get(KMSKEYS, "team-a", name) is None
    assert "kkv1." not in kube_api.log() and t.token not in kube_api.log()


def test_applied_derived_kmskey_cel_rules_and_tenant_attacks(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess, kube_root_key: str
) -> None:
    a = Transit(kube_api, "team-a", account(kube_cluster, "team-a", "app", VERBS))
    b = Transit(kube_api, "team-b", account(kube_cluster, "team-b", "app", VERBS))

    # kubectl apply of a derived KmsKey: the same key as one made through Transit.
    kube_cluster.create(KMSKEYS, kmskey("vault", derived=True), "team-a")
    kube_cluster.create(KMSKEYS, kmskey("dedup", algorithm="aes-128-gcm", derived=True,
                                        convergentEncryption=True), "team-a")
    kube_cluster.create(KMSKEYS, kmskey("signer", "sign-verify", "ECC_NIST_ED25519", derived=True), "team-a")
    obj = wait_ready(kube_cluster, "vault", "team-a")
    wait_ready(kube_cluster, "dedup", "team-a")
    wait_ready(kube_cluster, "signer", "team-a")
    key_id = obj["status"]["keyId"]
    status, read = a("GET", "keys/vault")
    assert status == 200 and (read["data"]["derived"], read["data"]["kdf"]) == (True, "hkdf_sha256"), read
    status, read = a("GET", "keys/dedup")
    assert status == 200 and read["data"]["type"] == "aes128-gcm96", read
    assert read["data"]["convergent_encryption"] is True
    sealed = a.encrypt("vault", b"secret", b"ctx-a")
    assert a.decrypt("vault", sealed, b"ctx-a") == (200, b"secret")
    assert a.decrypt("vault", sealed, b"ctx-b")[0] == 400
    assert a.encrypt("dedup", b"same", b"c") == a.encrypt("dedup", b"same", b"c")
    status, signed = a("POST", "sign/signer", {"input": b64(b"m"), "context": b64(b"c")})
    assert status == 200, signed

    # CEL: both fields are immutable, and convergent needs derived (kube-apiserver's 422s).
    for name, patch, message in (
        ("vault", {"derived": False}, "derived is immutable"),
        ("vault", {"convergentEncryption": True}, "convergentEncryption is immutable"),
        ("dedup", {"convergentEncryption": False}, "convergentEncryption is immutable"),
        ("signer", {"derived": None}, "derived is immutable"),
    ):
        with pytest.raises(ApiError) as refused:
            kube_cluster.patch(KMSKEYS, "team-a", name, {"spec": patch})
        assert refused.value.code == 422 and message in refused.value.message, (name, patch)
    with pytest.raises(ApiError) as refused:
        kube_cluster.create(KMSKEYS, kmskey("half", convergentEncryption=True), "team-a")
    assert "convergentEncryption requires derived" in refused.value.message
    with pytest.raises(ApiError) as refused:
        mac = kmskey("hmac", "generate-verify-mac", "HMAC_SHA_256", derived=True)
        kube_cluster.create(KMSKEYS, mac, "team-a")
    assert "derived is supported for aes-256-gcm" in refused.value.message
    stored = kube_cluster.get(KMSKEYS, "team-a", "vault")
    assert stored is not None and stored["spec"]["derived"] is True
    assert kube_cluster.get(KMSKEYS, "team-a", "half") is None

    # Tenant attack: team-b's token, any context, any route to team-a's derived key: refused.
    for context in (b"ctx-a", b"ctx-b", b""):
        with_context = {"context": b64(context)} if context else {}
        for path, body in (
            ("decrypt/vault", {"ciphertext": sealed}),
            ("encrypt/vault", {"plaintext": b64(b"x")}),
            ("sign/signer", {"input": b64(b"m")}),
        ):
            assert b("POST", path, {**body, **with_context}, namespace="team-a") == DENIED, (path, context)
    assert b("GET", "keys/vault", namespace="team-a") == DENIED
    # In its own namespace the name is team-b's own (an upsert makes a new key): it opens nothing
    # of team-a's.
    b.encrypt("vault", b"mine", b"ctx-a")
    status, out = b.decrypt("vault", sealed, b"ctx-a")
    assert status == 400 and "secret" not in str(out)
    own = kube_cluster.get(KMSKEYS, "team-b", "vault")
    assert own is not None and own["status"]["keyId"] != key_id
    # Adopting team-a's material from team-b (plain or derived) is refused by the owner record.
    kube_cluster.create(KMSKEYS, kmskey("squat", keyId=key_id, derived=True), "team-b")
    wait_degraded(kube_cluster, "squat", "AdoptionRefused", "team-b")
    assert "team-a" not in condition(kube_cluster.get(KMSKEYS, "team-b", "squat"), "Degraded")["message"]

    # team-a itself cannot turn its derived material plain: delete (Retain) and re-create with
    # spec.keyId and derived false stays Degraded; re-created derived, the old ciphertexts open.
    kube_cluster.delete(KMSKEYS, "team-a", "vault")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "team-a", "vault") is None, 30)
    kube_cluster.create(KMSKEYS, kmskey("plain", keyId=key_id), "team-a")
    degraded = wait_degraded(kube_cluster, "plain", "AttributeMismatch", "team-a")
    assert "derived" in condition(degraded, "Degraded")["message"]
    assert a("POST", "encrypt/plain", {"plaintext": b64(b"x")})[0] != 200  # not served at all
    kube_cluster.delete(KMSKEYS, "team-a", "plain")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "team-a", "plain") is None, 30)
    kube_cluster.create(KMSKEYS, kmskey("restored", keyId=key_id, derived=True), "team-a")
    wait_ready(kube_cluster, "restored", "team-a")
    assert record(kube_cluster, kube_root_key, key_id).derived
    assert a.decrypt("restored", sealed, b"ctx-a") == (200, b"secret")
    assert a.decrypt("restored", sealed, b"ctx-b")[0] == 400
