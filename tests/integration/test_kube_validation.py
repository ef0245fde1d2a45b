"""The emulated API server rejects invalid writes as kube-apiserver does: CEL rules, the CRD's
schema, the Secret size limit and the request size limit, with the real `Status` shape; and it
serves Leases with create-if-absent and resourceVersion conflicts (leader election relies on it).

The client's error classes (`kms_kube.client.error_of`) are checked on the very bytes the server
sent: a validation failure is permanent, a failed JSON-patch `test` is a conflict.
"""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

import pytest

from kms_kube.client import ApiError, Conflict, error_of
from kube import KMSKEYS, KUBEKMS_NAMESPACE, LEASES, Cluster
from kube.compat import status_body

KEYS = "/apis/kubekms.io/v1alpha1/namespaces/default/kmskeys"
SECRETS = f"/api/v1/namespaces/{KUBEKMS_NAMESPACE}/secrets"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{KUBEKMS_NAMESPACE}/leases"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"


def call(
    cluster: Cluster, method: str, path: str, body: Any = None, ctype: str = "application/json"
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def kmskey(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KmsKey",
        "metadata": {"name": name},
        "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm", **spec},
    }


def rejected(status: int, raw: bytes, method: str = "POST") -> dict[str, Any]:
    """The Status of a 422 Invalid, checked for kube-apiserver's shape and the client's class."""
    assert status == 422, raw
    body = json.loads(raw)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "Invalid"
    assert body["code"] == 422
    assert body["details"]["kind"] == "KmsKey" and body["details"]["group"] == "kubekms.io"
    error = error_of(status, raw, method)
    assert type(error) is ApiError and error.permanent and not error.retriable
    assert error.causes == tuple(c["reason"] for c in body["details"]["causes"])
    return dict(body)


def test_cel_rule_rejects_an_algorithm_not_valid_for_the_usage(kube_cluster: Cluster) -> None:
    status, raw = call(
        kube_cluster, "POST", KEYS, kmskey("k", keyUsage="sign-verify", algorithm="aes-256-gcm")
    )
    body = rejected(status, raw)
    assert body["details"]["name"] == "k"
    (cause,) = body["details"]["causes"]
    assert cause == {
        "reason": "FieldValueInvalid",
        "field": "spec.algorithm",
        "message": 'Invalid value: "object": algorithm is not valid for keyUsage',
    }
    assert body["message"] == (
        'KmsKey.kubekms.io "k" is invalid: spec.algorithm: '
        'Invalid value: "object": algorithm is not valid for keyUsage'
    )
    assert kube_cluster.get(KMSKEYS, "default", "k") is None


def test_cel_name_rule_and_transition_rules(kube_cluster: Cluster) -> None:
    status, raw = call(kube_cluster, "POST", KEYS, kmskey("Not_A_Slug"))
    assert rejected(status, raw)["details"]["causes"][0]["field"] == "<nil>"
    assert call(kube_cluster, "POST", KEYS, kmskey("k"))[0] == 201
    # keyUsage is immutable: the transition rule runs on update only.
    status, raw = call(
        kube_cluster,
        "PATCH",
        f"{KEYS}/k",
        {"spec": {"keyUsage": "sign-verify", "algorithm": "RSA_4096"}},
        MERGE,
    )
    causes = rejected(status, raw, "PATCH")["details"]["causes"]
    assert {c["message"] for c in causes} == {
        'Invalid value: "object": keyUsage is immutable',
        'Invalid value: "object": algorithm is immutable',
    }
    # Allowed: a change that keeps the fixed fields.
    assert call(kube_cluster, "PATCH", f"{KEYS}/k", {"spec": {"disabled": True}}, MERGE)[0] == 200


@pytest.mark.parametrize(
    ("spec", "reason", "field"),
    [
        ({"description": "x" * 501}, "FieldValueTooLong", "spec.description"),
        ({"keyId": "not-a-uuid"}, "FieldValueInvalid", "spec.keyId"),
        ({"deletionPolicy": "Shred"}, "FieldValueNotSupported", "spec.deletionPolicy"),
        ({"disabled": "yes"}, "FieldValueTypeInvalid", "spec.disabled"),
    ],
)
def test_schema_rejects_bad_spec_fields(
    kube_cluster: Cluster, spec: dict[str, Any], reason: str, field: str
) -> None:
    status, raw = call(kube_cluster, "POST", KEYS, kmskey("k", **spec))
    (cause,) = rejected(status, raw)["details"]["causes"]
    assert (cause["reason"], cause["field"]) == (reason, field)


def test_required_field_and_status_schema(kube_cluster: Cluster) -> None:
    body = kmskey("k")
    del body["spec"]["algorithm"]
    status, raw = call(kube_cluster, "POST", KEYS, body)
    assert rejected(status, raw)["details"]["causes"] == [
        {"reason": "FieldValueRequired", "field": "spec.algorithm", "message": "Required value"}
    ]
    assert call(kube_cluster, "POST", KEYS, kmskey("k"))[0] == 201
    # The status subresource is validated too (version has minimum 1).
    status, raw = call(kube_cluster, "PATCH", f"{KEYS}/k/status", {"status": {"version": 0}}, MERGE)
    (cause,) = rejected(status, raw, "PATCH")["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "status.version")
    assert call(kube_cluster, "PATCH", f"{KEYS}/k/status", {"status": {"version": 1}}, MERGE)[0] == 200


def test_failed_json_patch_test_is_a_conflict_not_a_rejection(kube_cluster: Cluster) -> None:
    assert call(kube_cluster, "POST", KEYS, kmskey("k"))[0] == 201
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/spec/disabled", "value": True},
    ]
    status, raw = call(kube_cluster, "PATCH", f"{KEYS}/k", ops, JSONPATCH)
    assert status == 422
    assert isinstance(error_of(status, raw, "PATCH"), Conflict)


def secret(name: str, size: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"version-1": base64.b64encode(b"\0" * size).decode()}}


def test_secret_over_one_mebibyte_is_invalid(kube_cluster: Cluster) -> None:
    assert call(kube_cluster, "POST", SECRETS, secret("fits", 1024 * 1024))[0] == 201
    status, raw = call(kube_cluster, "POST", SECRETS, secret("big", 1024 * 1024 + 1))
    assert status == 422
    body = json.loads(raw)
    assert body["details"] == {
        "name": "big",
        "group": "",
        "kind": "Secret",
        "causes": [
            {
                "reason": "FieldValueTooLong",
                "field": "data",
                "message": "Too long: may not be more than 1048576 bytes",
            }
        ],
    }
    assert body["message"] == 'Secret "big" is invalid: data: Too long: may not be more than 1048576 bytes'
    assert error_of(status, raw, "POST").permanent
    # Growing an existing Secret past the limit (a JSON patch adding a version) is rejected the same way.
    grow = [{"op": "add", "path": "/data/version-2", "value": base64.b64encode(b"\1").decode()}]
    status, raw = call(kube_cluster, "PATCH", f"{SECRETS}/fits", grow, JSONPATCH)
    assert status == 422 and type(error_of(status, raw, "PATCH")) is ApiError


def test_request_body_over_three_mebibytes_is_413(kube_cluster: Cluster) -> None:
    status, raw = call(kube_cluster, "POST", SECRETS, secret("huge", 3 * 1024 * 1024))
    assert status == 413
    body = json.loads(raw)
    assert (body["reason"], body["code"]) == ("RequestEntityTooLarge", 413)
    assert error_of(status, raw, "POST").permanent


def test_fault_answers_a_given_status_body(kube_cluster: Cluster) -> None:
    denial = status_body(403, "Forbidden", 'admission webhook "policy.example" denied the request: no')
    kube_cluster.fail(30, path="/secrets", method="POST", body=denial)
    status, raw = call(kube_cluster, "POST", SECRETS, secret("s", 1))
    assert (status, json.loads(raw)) == (403, denial)
    error = error_of(status, raw, "POST")
    assert error.permanent and error.message.startswith("admission webhook")
    assert call(kube_cluster, "GET", SECRETS)[0] == 200  # other methods are served


def lease(holder: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "kubekms-operator"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }


def test_leases_are_created_once_and_updated_with_resource_versions(kube_cluster: Cluster) -> None:
    status, raw = call(kube_cluster, "POST", LEASE_PATH, lease("a"))
    assert status == 201
    first = json.loads(raw)
    assert call(kube_cluster, "POST", LEASE_PATH, lease("b"))[0] == 409  # AlreadyExists
    taken = {**first, "spec": {**first["spec"], "holderIdentity": "b"}}
    status, raw = call(kube_cluster, "PUT", f"{LEASE_PATH}/kubekms-operator", taken)
    assert status == 200 and json.loads(raw)["spec"]["holderIdentity"] == "b"
    # A second update from the same (now stale) resourceVersion loses: only one candidate wins.
    stale = {**first, "spec": {**first["spec"], "holderIdentity": "c"}}
    status, raw = call(kube_cluster, "PUT", f"{LEASE_PATH}/kubekms-operator", stale)
    assert status == 409 and isinstance(error_of(status, raw, "PUT"), Conflict)
    assert kube_cluster.get(LEASES, KUBEKMS_NAMESPACE, "kubekms-operator")["spec"]["holderIdentity"] == "b"


@pytest.mark.parametrize("period", ["24h", "90d", "1h30m", "3600s"])
def test_lifecycle_fields_accepted(kube_cluster: Cluster, period: str) -> None:
    body = kmskey("k", rotationPeriod=period, minDecryptionVersion=1, minEncryptionVersion=0,
                  minAvailableVersion=0, deletionAllowed=False)
    status, raw = call(kube_cluster, "POST", KEYS, body)
    assert status == 201, raw
    assert json.loads(raw)["spec"]["rotationPeriod"] == period


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"rotationPeriod": "30m"}, "spec.rotationPeriod", "rotationPeriod must be at least 1h"),
        ({"rotationPeriod": "0d"}, "spec.rotationPeriod", "should match"),
        ({"rotationPeriod": "1.5h"}, "spec.rotationPeriod", "should match"),
        ({"minDecryptionVersion": 0}, "spec.minDecryptionVersion", "greater than or equal to 1"),
        ({"minDecryptionVersion": 3, "minEncryptionVersion": 2}, "spec.minEncryptionVersion",
         "at least minDecryptionVersion"),
        ({"minDecryptionVersion": 2, "minAvailableVersion": 3}, "spec.minAvailableVersion",
         "cannot be greater than minDecryptionVersion"),
    ],
)
def test_lifecycle_fields_refused(
    kube_cluster: Cluster, spec: dict[str, Any], field: str, message: str
) -> None:
    status, raw = call(kube_cluster, "POST", KEYS, kmskey("k", **spec))
    (cause,) = rejected(status, raw)["details"]["causes"]
    assert cause["field"] == field and message in cause["message"], cause
    assert kube_cluster.get(KMSKEYS, "default", "k") is None


def test_objects_without_lifecycle_fields_still_update_and_trim_only_grows(kube_cluster: Cluster) -> None:
    assert call(kube_cluster, "POST", KEYS, kmskey("k"))[0] == 201
    assert call(kube_cluster, "PATCH", f"{KEYS}/k", {"spec": {"disabled": True}}, MERGE)[0] == 200
    grown = {"spec": {"minDecryptionVersion": 3, "minEncryptionVersion": 3, "minAvailableVersion": 2}}
    assert call(kube_cluster, "PATCH", f"{KEYS}/k", grown, MERGE)[0] == 200
    status, raw = call(kube_cluster, "PATCH", f"{KEYS}/k", {"spec": {"minAvailableVersion": 1}}, MERGE)
    (cause,) = rejected(status, raw, "PATCH")["details"]["causes"]
    assert "cannot be decremented" in cause["message"]
    status, raw = call(kube_cluster, "PATCH", f"{KEYS}/k", {"spec": {"minAvailableVersion": None}}, MERGE)
    assert "cannot be decremented" in rejected(status, raw, "PATCH")["details"]["causes"][0]["message"]


# -- Transit's derived keys (issue 14): spec.derived and spec.convergentEncryption ----------------


CONVERGENT_NEEDS_DERIVED = "convergentEncryption requires derived"
DERIVABLE_ONLY = (
    "derived is supported for aes-256-gcm, aes-128-gcm, ECC_NIST_ED25519 and chacha20-poly1305 keys only"
)
AEAD_ONLY = "convergentEncryption is supported for aes-256-gcm, aes-128-gcm and chacha20-poly1305 keys only"


def causes_of(status: int, raw: bytes, method: str = "POST") -> set[tuple[str, str]]:
    return {(c["field"], c["message"]) for c in rejected(status, raw, method)["details"]["causes"]}


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"convergentEncryption": True}, "spec.convergentEncryption", CONVERGENT_NEEDS_DERIVED),
        ({"convergentEncryption": True, "derived": False}, "spec.convergentEncryption",
         CONVERGENT_NEEDS_DERIVED),
        ({"algorithm": "RSA_2048", "derived": True}, "spec.derived", DERIVABLE_ONLY),
        ({"keyUsage": "sign-verify", "algorithm": "ECC_NIST_P256", "derived": True}, "spec.derived",
         DERIVABLE_ONLY),
        ({"keyUsage": "sign-verify", "algorithm": "ECC_NIST_ED25519", "derived": True,
          "convergentEncryption": True}, "spec.convergentEncryption", AEAD_ONLY),
        ({"derived": "yes"}, "spec.derived", None),
    ],
)
def test_derivation_rules_refuse_at_admission(
    kube_cluster: Cluster, spec: dict[str, Any], field: str, message: str | None
) -> None:
    status, raw = call(kube_cluster, "POST", KEYS, kmskey("k", **spec))
    found = causes_of(status, raw)
    if message is None:
        assert [f for f, _ in found] == [field]  # a type error, no CEL
    else:
        assert found == {(field, f'Invalid value: "object": {message}')}
    assert kube_cluster.get(KMSKEYS, "default", "k") is None


def test_derived_and_convergent_are_accepted_and_immutable(kube_cluster: Cluster) -> None:
    for name, spec in (
        ("conv", {"algorithm": "chacha20-poly1305", "derived": True, "convergentEncryption": True}),
        ("sig", {"keyUsage": "sign-verify", "algorithm": "ECC_NIST_ED25519", "derived": True}),
        ("plain", {}),
        ("off", {"derived": False, "convergentEncryption": False}),
    ):
        assert call(kube_cluster, "POST", KEYS, kmskey(name, **spec))[0] == 201, name
    immutable = 'Invalid value: "object": {} is immutable'
    for name, patch, fields in (
        ("conv", {"derived": False, "convergentEncryption": False}, ["derived", "convergentEncryption"]),
        ("conv", {"convergentEncryption": False}, ["convergentEncryption"]),
        ("sig", {"derived": False}, ["derived"]),
        ("off", {"derived": True}, ["derived"]),
        # Created without the field: kube-apiserver stored its default (false), so setting it
        # later is a change too (the emulator validates absent fields as their defaults).
        ("plain", {"derived": True}, ["derived"]),
        ("plain", {"derived": True, "convergentEncryption": True}, ["derived", "convergentEncryption"]),
    ):
        status, raw = call(kube_cluster, "PATCH", f"{KEYS}/{name}", {"spec": patch}, MERGE)
        assert causes_of(status, raw, "PATCH") == {
            (f"spec.{f}", immutable.format(f)) for f in fields
        }, (name, patch)
    # Removing the field is setting it to its default: refused for a derived key...
    status, raw = call(kube_cluster, "PATCH", f"{KEYS}/sig", {"spec": {"derived": None}}, MERGE)
    assert causes_of(status, raw, "PATCH") == {("spec.derived", immutable.format("derived"))}
    # ... and a no-op for the others; other fields still change.
    assert call(kube_cluster, "PATCH", f"{KEYS}/off", {"spec": {"derived": None}}, MERGE)[0] == 200
    assert call(kube_cluster, "PATCH", f"{KEYS}/conv", {"spec": {"disabled": True}}, MERGE)[0] == 200
    assert call(kube_cluster, "PATCH", f"{KEYS}/plain", {"spec": {"derived": False}}, MERGE)[0] == 200
    stored = kube_cluster.get(KMSKEYS, "default", "conv")
    assert stored is not None and stored["spec"]["derived"] is True and stored["spec"]["convergentEncryption"]
