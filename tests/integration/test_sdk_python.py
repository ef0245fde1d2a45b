"""The official Python SDK (`infisicalsdk`) against a live `kubekms-api`: its KMS calls work unchanged."""

from __future__ import annotations

import base64

from infisical_sdk import InfisicalSDKClient
from infisical_sdk.api_types import SymmetricEncryption

from fixtures.api import ADMIN, ROBOT_ID, ROBOT_SECRET, ApiProcess, P


def test_python_sdk_kms_flow(api_process: ApiProcess) -> None:
    client = InfisicalSDKClient(host=api_process.url, token=ADMIN)
    kms = client.kms
    key = kms.create_key(
        name="sdk-key",
        project_id=P,
        encryption_algorithm=SymmetricEncryption.AES_GCM_256,
        description="made by the SDK",
    )
    assert key.name == "sdk-key" and key.encryptionAlgorithm == "aes-256-gcm" and key.version == 1
    other = kms.create_key(
        name="sdk-other",
        project_id=P,
        encryption_algorithm=SymmetricEncryption.AES_GCM_128,
        description="second",
    )
    listed = kms.list_keys(project_id=P)
    assert [k.name for k in listed.keys] == ["sdk-key", "sdk-other"] and listed.totalCount == 2
    assert kms.get_key_by_id(key.id).name == "sdk-key"
    assert kms.get_key_by_name(key_name="sdk-other", project_id=P).id == other.id
    updated = kms.update_key(key_id=key.id, name="sdk-renamed", description="renamed")
    assert (updated.name, updated.description) == ("sdk-renamed", "renamed")
    plaintext = base64.b64encode(b"hello from the sdk").decode()
    ciphertext = kms.encrypt_data(key_id=key.id, base64EncodedPlaintext=plaintext)
    assert ciphertext != plaintext
    assert kms.decrypt_data(key_id=key.id, ciphertext=ciphertext) == plaintext
    deleted = kms.delete_key(key_id=other.id)
    assert deleted.id == other.id
    assert [k.name for k in kms.list_keys(project_id=P).keys] == ["sdk-renamed"]


def test_python_sdk_universal_auth(api_process: ApiProcess) -> None:
    admin = InfisicalSDKClient(host=api_process.url, token=ADMIN)
    key = admin.kms.create_key(
        name="robot-key",
        project_id=P,
        encryption_algorithm=SymmetricEncryption.AES_GCM_256,
        description="for the robot",
    )
    robot = InfisicalSDKClient(host=api_process.url)
    login = robot.auth.universal_auth.login(client_id=ROBOT_ID, client_secret=ROBOT_SECRET)
    assert login.tokenType == "Bearer" and login.expiresIn == 60
    ciphertext = robot.kms.encrypt_data(key_id=key.id, base64EncodedPlaintext="YQ==")
    assert robot.kms.decrypt_data(key_id=key.id, ciphertext=ciphertext) == "YQ=="
