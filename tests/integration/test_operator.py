"""The real operator process against the emulated API server: KmsKey -> sealed Secret, status, events."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fixtures.kube import EXAMPLES, OperatorProcess
from kube import KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.kmskeys import (
    condition,
    kmskey,
    material_secrets,
    reasons,
    secret_of,
    unseal_all,
    wait_degraded,
    wait_ready,
)

CURVES = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1"}


def test_each_example_becomes_ready_with_sealed_material(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_root_key: str
) -> None:
    created = [kube_cluster.apply_file(path)[0] for path in sorted(EXAMPLES.glob("*.yaml"))]
    for obj in created:
        key = wait_ready(kube_cluster, obj["metadata"]["name"])
        st, spec = key["status"], key["spec"]
        secret = secret_of(kube_cluster, key)
        assert secret is not None and st["secretName"] == secret["metadata"]["name"]
        assert st["observedGeneration"] == key["metadata"]["generation"]
        assert condition(key, "Degraded")["status"] == "False"
        labels, notes = secret["metadata"]["labels"], secret["metadata"]["annotations"]
        assert labels["kubekms.io/key-id"] == st["keyId"]
        assert (labels["kubekms.io/owner-namespace"], labels["kubekms.io/owner-name"]) == (
            "default",
            obj["metadata"]["name"],
        )
        assert (
            notes["kubekms.io/algorithm"] == spec["algorithm"]
            and notes["kubekms.io/key-usage"] == spec["keyUsage"]
        )
        assert len(notes["kubekms.io/kek-id"]) == 16
        materials = unseal_all(kube_root_key, key, secret)
        assert list(materials) == [1]
        raw = materials[1]
        if spec["algorithm"] == "HMAC_SHA_256" or spec["algorithm"] == "aes-256-gcm":
            assert len(raw) == 32 and "publicKey" not in st
        else:
            private = serialization.load_der_private_key(raw, password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            assert private.curve.name == CURVES[spec["algorithm"]]
            spki = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            assert base64.b64decode(st["publicKey"]) == spki
        assert raw not in secret["data"]["version-1"].encode()  # sealed, not merely encoded
        assert "MaterialCreated" in reasons(kube_cluster, obj["metadata"]["name"])
    assert len(material_secrets(kube_cluster)) == len(created)


def test_rsa_signing_key_publishes_its_public_key(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("rsa", "sign-verify", "RSA_4096"), "default")
    key = wait_ready(kube_cluster, "rsa", timeout=60)
    public = serialization.load_der_public_key(base64.b64decode(key["status"]["publicKey"]))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096


def test_disabled_is_reflected_in_status(kube_cluster: Cluster, kube_operator: OperatorProcess) -> None:
    kube_cluster.create(KMSKEYS, kmskey("off", disabled=True), "team-a")
    key = wait_ready(kube_cluster, "off", "team-a")
    assert key["status"]["disabled"] is True and condition(key, "Ready")["reason"] == "Disabled"
    kube_cluster.patch(KMSKEYS, "team-a", "off", {"spec": {"disabled": False}})
    key = kube_cluster.wait_for(
        lambda: (
            (k := kube_cluster.get(KMSKEYS, "team-a", "off")) and k["status"].get("disabled") is False and k
        )
    )
    assert condition(key, "Ready")["reason"] == "Ready"
    assert key["status"]["observedGeneration"] == key["metadata"]["generation"] == 2
    assert len(material_secrets(kube_cluster)) == 1


def test_rotation_by_annotation(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_root_key: str
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("rot"), "default")
    before = wait_ready(kube_cluster, "rot")
    kube_cluster.patch(KMSKEYS, "default", "rot", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
    key = wait_ready(kube_cluster, "rot", version=2)
    assert key["status"]["keyId"] == before["status"]["keyId"] and key["status"]["rotation"] == "r1"
    secret = secret_of(kube_cluster, key)
    assert secret is not None and secret["metadata"]["annotations"]["kubekms.io/rotation"] == "r1"
    materials = unseal_all(kube_root_key, key, secret)
    assert sorted(materials) == [1, 2] and materials[1] != materials[2]
    assert "Rotated" in reasons(kube_cluster, "rot")
    # The same value again is not a new request; several check intervals pass without a version 3.
    kube_cluster.patch(KMSKEYS, "default", "rot", {"metadata": {"labels": {"touched": "yes"}}})
    time.sleep(3)
    assert kube_cluster.get(KMSKEYS, "default", "rot")["status"]["version"] == 2
    kube_cluster.patch(KMSKEYS, "default", "rot", {"metadata": {"annotations": {"kubekms.io/rotate": "r2"}}})
    key = wait_ready(kube_cluster, "rot", version=3)
    assert sorted(unseal_all(kube_root_key, key, secret_of(kube_cluster, key) or {})) == [1, 2, 3]


@pytest.mark.parametrize(
    ("usage", "algorithm"),
    [
        ("sign-verify", "ECC_NIST_P256"),
        ("generate-verify-mac", "HMAC_SHA_256"),
        ("key-agreement", "ECC_NIST_P256"),
    ],
)
def test_every_usage_rotates_on_request(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_root_key: str, usage: str, algorithm: str
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("k", usage, algorithm), "default")
    first = wait_ready(kube_cluster, "k")
    kube_cluster.patch(KMSKEYS, "default", "k", {"metadata": {"annotations": {"kubekms.io/rotate": "x"}}})
    key = wait_ready(kube_cluster, "k", version=2)
    assert key["status"]["rotation"] == "x"
    secret = secret_of(kube_cluster, key)
    assert secret is not None and sorted(secret["data"]) == ["version-1", "version-2"]
    materials = unseal_all(kube_root_key, key, secret)
    assert materials[1] != materials[2]
    if usage != "generate-verify-mac":  # asymmetric: status shows the new version's public key
        assert key["status"]["publicKey"] != first["status"]["publicKey"]
    assert [v["state"] for v in key["status"]["versions"]] == ["enabled", "primary"]
    assert "Rotated" in reasons(kube_cluster, "k")


def test_delete_with_retain_keeps_an_orphaned_secret(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("keep"), "default")
    key = wait_ready(kube_cluster, "keep")
    kube_cluster.delete(KMSKEYS, "default", "keep")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "keep") is None)
    secret = secret_of(kube_cluster, key)
    assert secret is not None and secret["metadata"]["labels"]["kubekms.io/orphaned"] == "true"
    assert "kubekms.io/orphaned-at" in secret["metadata"]["annotations"]
    assert "MaterialRetained" in reasons(kube_cluster, "keep")


def test_delete_with_delete_and_no_window_removes_the_secret(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    kube_operator_factory(KUBEKMS_DELETION_WINDOW="0").start()
    kube_cluster.create(KMSKEYS, kmskey("gone", deletionPolicy="Delete"), "default")
    key = wait_ready(kube_cluster, "gone")
    kube_cluster.delete(KMSKEYS, "default", "gone")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "gone") is None)
    assert secret_of(kube_cluster, key) is None
    assert material_secrets(kube_cluster) == []


def test_missing_secret_degrades_and_never_remints(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("lost"), "default")
    key = wait_ready(kube_cluster, "lost")
    kube_cluster.delete(SECRETS, KUBEKMS_NAMESPACE, key["status"]["secretName"])
    degraded = wait_degraded(kube_cluster, "lost", "SecretMissing")
    assert condition(degraded, "Ready")["status"] == "False"
    warnings = [e for e in kube_cluster.events("default", "lost") if e.get("type") == "Warning"]
    assert [e["reason"] for e in warnings] == ["SecretMissing"]
    time.sleep(3)  # several check intervals: still degraded, still no material, one warning only
    assert material_secrets(kube_cluster) == []
    assert [e["reason"] for e in kube_cluster.events("default", "lost") if e.get("type") == "Warning"] == [
        "SecretMissing"
    ]
    history = kube_cluster.history(SECRETS, KUBEKMS_NAMESPACE, key["status"]["secretName"])
    assert history[-1] is None and sum(1 for v in history if v is None) == 1


def test_spec_key_id_adopts_existing_material(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_root_key: str
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("orig"), "old")
    orig = wait_ready(kube_cluster, "orig", "old")
    before = secret_of(kube_cluster, orig)
    kube_cluster.delete(KMSKEYS, "old", "orig")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "old", "orig") is None)
    key_id = orig["status"]["keyId"]
    kube_cluster.create(KMSKEYS, kmskey("restored", keyId=key_id), "old")  # the same namespace only
    key = wait_ready(kube_cluster, "restored", "old")
    secret = secret_of(kube_cluster, key)
    assert key["status"]["keyId"] == key_id and secret is not None and before is not None
    assert secret["data"] == before["data"]
    assert unseal_all(kube_root_key, key, secret) == unseal_all(kube_root_key, orig, before)
    labels = secret["metadata"]["labels"]
    assert (labels["kubekms.io/owner-namespace"], labels["kubekms.io/owner-name"]) == ("old", "restored")
    assert "kubekms.io/orphaned" not in labels and "MaterialAdopted" in reasons(
        kube_cluster, "restored", "old"
    )


def test_adopting_an_unknown_key_id_never_mints(
    kube_cluster: Cluster, kube_operator: OperatorProcess
) -> None:
    key_id = "0f0e0d0c-0b0a-4908-8706-050403020100"
    kube_cluster.create(KMSKEYS, kmskey("ghost", keyId=key_id), "default")
    key = wait_degraded(kube_cluster, "ghost", "SecretMissing")
    assert key["status"]["keyId"] == key_id and "version" not in key["status"]
    time.sleep(2)
    assert material_secrets(kube_cluster) == []


def test_kek_mismatch_degrades_without_writes(
    kube_cluster: Cluster,
    kube_operator: OperatorProcess,
    kube_operator_factory: Callable[..., OperatorProcess],
) -> None:
    kube_cluster.create(KMSKEYS, kmskey("kek"), "default")
    key = wait_ready(kube_cluster, "kek")
    kube_operator.stop()
    secret_rv = secret_of(kube_cluster, key)["metadata"]["resourceVersion"]  # type: ignore[index]
    other_root = base64.b64encode(b"\x01" * 32).decode()
    kube_operator_factory(ROOT_ENCRYPTION_KEY=other_root).start()
    degraded = wait_degraded(kube_cluster, "kek", "KekMismatch")
    message = condition(degraded, "Degraded")["message"]
    assert "kek_id" in message and "nothing was written" in message
    kube_cluster.patch(KMSKEYS, "default", "kek", {"metadata": {"annotations": {"kubekms.io/rotate": "1"}}})
    time.sleep(3)
    assert secret_of(kube_cluster, key)["metadata"]["resourceVersion"] == secret_rv  # type: ignore[index]
    assert len(material_secrets(kube_cluster)) == 1
