"""Mapping KmsKey objects and key Secrets to the Infisical key model, and the list search rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from kms_api.kube import kmskey as kk
from kms_api.kube.nameindex import ilike as _ilike
from kms_core.model import Algorithm, KeySpec, KeyUsage
from kms_core.ownership import OwnerRecord
from kms_kube import layout

RECORD = OwnerRecord(
    key_id="3f1c7c5e-8d2a-4b7e-9c1d-2a3b4c5d6e7f", namespace="team-a", name="payments", uid="u-1",
    usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256, exportable=False,
)


def _obj(**status: object) -> dict[str, object]:
    return {
        "apiVersion": kk.API_VERSION, "kind": kk.KIND,
        "metadata": {"name": "payments", "namespace": "team-a", "uid": "u-1",
                     "creationTimestamp": "2025-01-31T10:11:12Z",
                     "annotations": {kk.UPDATED_ANNOTATION: "2025-02-01T00:00:00.000Z",
                                     kk.DELETE_PROTECTION_ANNOTATION: "true"}},
        "spec": {"keyUsage": "sign-verify", "algorithm": "ECC_NIST_P256", "disabled": True,
                 "exportable": False, "description": "pay"},
        "status": dict(status),
    }


def test_live_kmskey_maps_to_key() -> None:
    obj = _obj(keyId="3f1c7c5e-8d2a-4b7e-9c1d-2a3b4c5d6e7f", version=3,
               conditions=[{"type": "Ready", "status": "True"}])
    assert kk.is_live(obj) and kk.is_ready(obj)
    key = kk.to_key(obj, "org-uid", RECORD)
    assert key.id == "3f1c7c5e-8d2a-4b7e-9c1d-2a3b4c5d6e7f"
    assert (key.name, key.project_id, key.org_id) == ("payments", "team-a", "org-uid")
    assert key.key_usage == KeyUsage.SIGN_VERIFY and key.algorithm == Algorithm.ECC_NIST_P256
    assert key.version == 3 and key.is_disabled and not key.is_exportable and key.has_delete_protection
    assert key.description == "pay"
    assert key.created_at == datetime(2025, 1, 31, 10, 11, 12, tzinfo=UTC)
    assert key.updated_at == datetime(2025, 2, 1, tzinfo=UTC)


def test_fixed_attributes_come_from_the_owner_record_not_the_spec() -> None:
    obj = _obj(keyId=RECORD.key_id, version=1, conditions=[{"type": "Ready", "status": "True"}])
    obj["spec"] = {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm", "exportable": True}
    key = kk.to_key(obj, "org-uid", RECORD)
    assert (key.key_usage, key.algorithm, key.is_exportable) == (
        KeyUsage.SIGN_VERIFY, Algorithm.ECC_NIST_P256, False
    )


def test_derivation_comes_from_the_owner_record_not_the_spec() -> None:
    """A spec saying derived (or not) changes nothing: the record minted with the material decides
    which key a request uses."""
    from dataclasses import replace

    obj = _obj(keyId=RECORD.key_id, version=1, conditions=[{"type": "Ready", "status": "True"}])
    derived = replace(RECORD, algorithm=Algorithm.ECC_NIST_ED25519, derived=True)
    obj["spec"] = {"keyUsage": "sign-verify", "algorithm": "ECC_NIST_ED25519", "derived": False}
    assert kk.to_key(obj, "org-uid", derived).derived
    convergent = replace(RECORD, usage=KeyUsage.ENCRYPT_DECRYPT, algorithm=Algorithm.AES_128_GCM,
                         derived=True, convergent=True)
    key = kk.to_key(obj, "org-uid", convergent)
    assert (key.derived, key.convergent_encryption) == (True, True)
    obj["spec"] = {"keyUsage": "sign-verify", "algorithm": "ECC_NIST_P256", "derived": True,
                   "convergentEncryption": True}
    key = kk.to_key(obj, "org-uid", RECORD)
    assert (key.derived, key.convergent_encryption) == (False, False)


def test_kmskey_without_material_or_being_deleted_is_not_live() -> None:
    assert not kk.is_live(_obj())
    pending = _obj(keyId="k", version=1, conditions=[{"type": "Ready", "status": "False"}])
    assert kk.is_live(pending) and not kk.is_ready(pending)
    deleting = _obj(keyId="k", version=1)
    deleting["metadata"]["deletionTimestamp"] = "2025-01-31T10:11:12Z"  # type: ignore[index]
    assert not kk.is_live(deleting)


def test_manifest_leaves_keyid_to_the_operator() -> None:
    spec = KeySpec(project_id="team-a", name="k", key_usage=KeyUsage.GENERATE_VERIFY_MAC,
                   algorithm=Algorithm.HMAC_SHA_256, description="d", is_exportable=True)
    m = kk.manifest(spec, datetime(2025, 1, 1, tzinfo=UTC))
    assert m["metadata"]["namespace"] == "team-a" and m["metadata"]["name"] == "k"
    assert m["spec"] == {"keyUsage": "generate-verify-mac", "algorithm": "HMAC_SHA_256",
                         "disabled": False, "exportable": True, "description": "d"}
    assert "keyId" not in m["spec"]
    assert kk.DELETE_PROTECTION_ANNOTATION not in m["metadata"]["annotations"]


def test_manifest_states_derivation_only_for_derived_keys() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    derived = kk.manifest(KeySpec(project_id="p", name="d", derived=True), at)["spec"]
    assert (derived["derived"], derived["convergentEncryption"]) == (True, False)
    convergent = KeySpec(project_id="p", name="c", algorithm=Algorithm.CHACHA20_POLY1305, derived=True,
                         convergent_encryption=True)
    spec = kk.manifest(convergent, at)["spec"]
    assert (spec["algorithm"], spec["derived"], spec["convergentEncryption"]) == (
        "chacha20-poly1305", True, True
    )
    plain = kk.manifest(KeySpec(project_id="p", name="k"), at)["spec"]
    assert "derived" not in plain and "convergentEncryption" not in plain


def test_secret_versions_newest_first_skipping_malformed() -> None:
    secret = {
        "metadata": {"name": "kmskey-k", "creationTimestamp": "2025-01-31T10:11:12Z",
                     "labels": {kk.KEY_ID_LABEL: "k", layout.OWNER_NAMESPACE: "team-a",
                                layout.OWNER_NAME: "payments"}},
        "data": {
            "version-1": base64.b64encode(b"one").decode(),
            "version-10": base64.b64encode(b"ten").decode(),
            "version-2": base64.b64encode(b"two").decode(),
            "version-0": base64.b64encode(b"zero").decode(),
            "version-3": "not base64!",
            "other": base64.b64encode(b"x").decode(),
        },
    }
    versions = kk.to_versions(secret, "k")
    assert [(v.version, v.sealed) for v in versions] == [(10, b"ten"), (2, b"two"), (1, b"one")]
    assert kk.secret_key_id(secret) == "k"
    assert kk.owner(secret) == ("team-a", "payments")


def test_search_is_ilike_with_sql_wildcards() -> None:
    assert _ilike("PAY").search("my-payments")
    assert _ilike("p_y").search("payments")
    assert _ilike("p%s").search("payments")
    assert not _ilike("p.y").search("payments")  # regex metacharacters are literal
    assert not _ilike("xyz").search("payments")
