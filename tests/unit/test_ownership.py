"""Owner records: sealed, bound to their key id, and refused when moved, forged or re-sealed."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import replace

import pytest

from kms_core.model import Algorithm, KeyUsage
from kms_core.ownership import OwnerRecord, RecordInvalid, open_record, seal_record
from kms_core.sealing.base import material_aad
from kms_core.sealing.rootkey import RootKeySealer

SEALER = RootKeySealer(os.urandom(32))
KEY_ID = str(uuid.uuid4())
RECORD = OwnerRecord(
    key_id=KEY_ID, namespace="team-a", name="payroll", uid=str(uuid.uuid4()),
    usage=KeyUsage.SIGN_VERIFY, algorithm=Algorithm.ECC_NIST_P256, exportable=False,
)


def test_round_trip_and_the_owner_is_exactly_the_recorded_object() -> None:
    opened = open_record(seal_record(RECORD, SEALER), KEY_ID, SEALER)
    assert opened == RECORD
    assert opened.owned_by("team-a", "payroll", RECORD.uid)
    assert not opened.owned_by("team-a", "payroll", str(uuid.uuid4()))  # re-created under the name
    assert not opened.owned_by("team-b", "payroll", RECORD.uid)
    assert not opened.owned_by("team-a", "payroll", None)
    moved = opened.handed_to("team-c", "handover", "u-2")
    assert (moved.namespace, moved.usage, moved.exportable) == ("team-c", RECORD.usage, False)


def test_the_record_is_not_readable_without_the_kek() -> None:
    value = base64.b64decode(seal_record(RECORD, SEALER))
    assert b"payroll" not in value and b"team-a" not in value


@pytest.mark.parametrize(
    "value, key_id, sealer",
    [
        (None, KEY_ID, SEALER),
        ("", KEY_ID, SEALER),
        ("not base64!", KEY_ID, SEALER),
        (base64.b64encode(b"\x01garbage").decode(), KEY_ID, SEALER),
        ("RECORD", str(uuid.uuid4()), SEALER),  # copied onto another key's Secret
        ("RECORD", KEY_ID, RootKeySealer(os.urandom(32))),  # another KEK
    ],
)
def test_moved_forged_or_foreign_records_do_not_open(
    value: str | None, key_id: str, sealer: RootKeySealer
) -> None:
    value = seal_record(RECORD, SEALER) if value == "RECORD" else value
    with pytest.raises(RecordInvalid):
        open_record(value, key_id, sealer)


def test_a_sealed_material_blob_is_not_a_record() -> None:
    """Blobs sealed for material (another AAD) never pass as records, and vice versa."""
    doc = {"v": 1, "keyId": KEY_ID, "namespace": "team-b", "name": "x", "uid": "u", "keyUsage": "sign-verify",
           "algorithm": "ECC_NIST_P256", "exportable": True}
    blob = SEALER.seal(json.dumps(doc).encode(), material_aad(KEY_ID, 1, Algorithm.ECC_NIST_P256))
    with pytest.raises(RecordInvalid):
        open_record(base64.b64encode(blob).decode(), KEY_ID, SEALER)


@pytest.mark.parametrize("field", ["namespace", "uid", "exportable", "keyId"])
def test_incomplete_or_mismatched_documents_are_refused(field: str) -> None:
    doc = {"v": 1, "keyId": KEY_ID, "namespace": "team-a", "name": "x", "uid": "u", "keyUsage": "sign-verify",
           "algorithm": "ECC_NIST_P256", "exportable": False}
    doc[field] = str(uuid.uuid4()) if field == "keyId" else None
    blob = SEALER.seal(json.dumps(doc).encode(), f"kubekms/v1|owner|{KEY_ID}".encode())
    with pytest.raises(RecordInvalid):
        open_record(base64.b64encode(blob).decode(), KEY_ID, SEALER)


# -- Transit's derivation flags (issue 14) -------------------------------------------------------

DERIVED = OwnerRecord(
    key_id=KEY_ID, namespace="team-a", name="vault", uid=str(uuid.uuid4()), usage=KeyUsage.ENCRYPT_DECRYPT,
    algorithm=Algorithm.AES_256_GCM, exportable=False, derived=True, convergent=True,
)


AAD = f"kubekms/v1|owner|{KEY_ID}".encode()


def document(value: str) -> dict[str, object]:
    opened: dict[str, object] = json.loads(SEALER.unseal(base64.b64decode(value), AAD))
    return opened


def reseal(doc: dict[str, object]) -> str:
    return base64.b64encode(SEALER.seal(json.dumps(doc).encode(), AAD)).decode()


def test_derivation_flags_round_trip_and_survive_a_handover() -> None:
    for record in (DERIVED, replace(DERIVED, convergent=False), RECORD):
        opened = open_record(seal_record(record, SEALER), KEY_ID, SEALER)
        assert opened == record
        moved = opened.handed_to("team-c", "handover", "u-2")
        assert (moved.derived, moved.convergent) == (record.derived, record.convergent)


def test_a_plain_record_keeps_format_1_and_a_derived_one_is_format_2() -> None:
    """Format 1 (what readers before derivation open) is unchanged for plain keys; a derived key's
    record is format 2, which such readers refuse: they fail closed rather than serve it plain."""
    plain = document(seal_record(RECORD, SEALER))
    assert plain["v"] == 1 and "derived" not in plain and "convergentEncryption" not in plain
    derived = document(seal_record(DERIVED, SEALER))
    assert (derived["v"], derived["derived"], derived["convergentEncryption"]) == (2, True, True)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 1},  # derivation fields in a format-1 record
        {"derived": False},  # format 2 is for derived keys only
        {"derived": "true"},
        {"convergentEncryption": None},
        {"v": 3},
    ],
)
def test_malformed_derivation_fields_are_refused(change: dict[str, object]) -> None:
    doc = document(seal_record(DERIVED, SEALER))
    doc.update(change)
    with pytest.raises(RecordInvalid):
        open_record(reseal(doc), KEY_ID, SEALER)
    missing = document(seal_record(DERIVED, SEALER))
    del missing["convergentEncryption"]
    with pytest.raises(RecordInvalid):
        open_record(reseal(missing), KEY_ID, SEALER)


def test_convergent_without_derived_is_never_sealed() -> None:
    with pytest.raises(ValueError, match="requires derivation"):
        seal_record(replace(RECORD, convergent=True), SEALER)
