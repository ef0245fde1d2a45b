"""Key lifecycle over HTTP: spec §7 cases 1-8, 14-16, 26-30 and the key object of §1.4."""

from __future__ import annotations

import re
import uuid

from fixtures.api import Api, P, b64

KEYS = "/api/v1/kms/keys"
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY_FIELDS = {
    "id",
    "name",
    "description",
    "isDisabled",
    "orgId",
    "projectId",
    "keyUsage",
    "createdAt",
    "updatedAt",
    "version",
    "encryptionAlgorithm",
    "algorithm",
    "isExportable",
    "hasDeleteProtection",
    "kmipMetadata",
}


async def test_case_1_create_returns_the_full_key_object(api: Api) -> None:
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "app-key", "description": "d"})
    assert reply.status == 200
    key = reply.body["key"]
    assert set(key) == KEY_FIELDS  # exactly §1.4: no isReserved
    assert key["keyUsage"] == "encrypt-decrypt"
    assert key["encryptionAlgorithm"] == key["algorithm"] == "aes-256-gcm"
    assert (key["version"], key["isDisabled"], key["projectId"]) == (1, False, P)
    assert (
        key["isExportable"] is False and key["hasDeleteProtection"] is False and key["kmipMetadata"] is None
    )
    assert uuid.UUID(key["id"]).version == 4 and uuid.UUID(key["orgId"])
    assert DATE.match(key["createdAt"]) and DATE.match(key["updatedAt"])
    assert reply.headers["Content-Type"].startswith("application/json")


async def test_case_2_duplicate_name(api: Api) -> None:
    await api.create("app-key")
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "app-key"})
    assert reply.status == 400
    assert reply.body["error"] == "BadRequest"
    assert (
        reply.body["message"]
        == f'A KMS key with the name "app-key" already exists for the project with ID "{P}"'
    )
    assert (await api.call("POST", KEYS, {"projectId": "other", "name": "app-key"})).status == 200


async def test_cases_3_to_5_names_and_descriptions(api: Api) -> None:
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "App_Key"})
    assert (
        reply.status == 422 and reply.body["error"] == "ValidationFailure" and reply.body["statusCode"] == 422
    )
    assert reply.body["message"] == [
        {
            "code": "custom",
            "message": "Name field can only contain lowercase letters, numbers, and hyphens",
            "path": ["name"],
        }
    ]
    assert reply.body["reqId"] == reply.headers["X-Request-Id"]
    for bad in ["a" * 33, "", "a--b", "-ab"]:
        assert (await api.call("POST", KEYS, {"projectId": P, "name": bad})).status == 422, bad
    assert (await api.call("POST", KEYS, {"projectId": P, "name": "a1-b2"})).status == 200
    long = {"projectId": P, "name": "d1", "description": "x" * 501}
    assert (await api.call("POST", KEYS, long)).status == 422
    assert (await api.call("POST", KEYS, {**long, "description": "x" * 500})).status == 200


async def test_cases_6_to_8_usage_and_algorithm(api: Api) -> None:
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "s1", "keyUsage": "sign-verify"})
    assert reply.status == 422
    assert reply.body["message"][0]["message"].startswith(
        "algorithm must be a valid asymmetric sign-verify algorithm"
    )
    key = await api.create("ec", keyUsage="sign-verify", encryptionAlgorithm="ECC_NIST_P256")
    assert (key["keyUsage"], key["encryptionAlgorithm"], key["algorithm"]) == (
        "sign-verify",
        "ECC_NIST_P256",
        "ECC_NIST_P256",
    )
    reply = await api.call("POST", KEYS, {"projectId": P, "name": "x", "algorithm": "aes-512-gcm"})
    assert reply.status == 422 and reply.body["message"][0]["code"] == "invalid_value"
    assert (await api.call("POST", KEYS, {"projectId": P, "name": "x", "keyUsage": "encrypt"})).status == 422
    key = await api.create("aes128", algorithm="aes-128-gcm")
    assert key["algorithm"] == "aes-128-gcm"


async def test_case_14_disable_and_reenable(api: Api) -> None:
    key = await api.create("k")
    reply = await api.call("PATCH", api.key(key["id"]), {"isDisabled": True})
    assert reply.status == 200 and reply.body["key"]["isDisabled"] is True
    encrypt = await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"x")})
    assert (encrypt.status, encrypt.body["message"]) == (400, "Key is disabled")
    decrypt = await api.call("POST", api.key(key["id"], "decrypt"), {"ciphertext": b64(bytes(40))})
    assert (decrypt.status, decrypt.body["message"]) == (400, "Key is disabled")
    assert (await api.call("GET", api.key(key["id"]))).status == 200
    assert (await api.call("PATCH", api.key(key["id"]), {"isDisabled": False})).status == 200
    assert (await api.call("POST", api.key(key["id"], "encrypt"), {"plaintext": b64(b"x")})).status == 200


async def test_cases_15_16_unknown_and_malformed_ids(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    reply = await api.call("POST", api.key(missing, "encrypt"), {"plaintext": "YQ"})
    assert (reply.status, reply.body["error"]) == (404, "NotFound")
    assert reply.body["message"] == f'Key with ID "{missing}" not found'
    reply = await api.call("POST", api.key("not-a-uuid", "encrypt"), {"plaintext": "YQ"})
    assert reply.status == 422
    [issue] = reply.body["message"]
    assert (issue["code"], issue["format"], issue["message"], issue["path"]) == (
        "invalid_format", "uuid", "Invalid UUID", ["keyId"]
    )
    assert (await api.call("GET", api.key(missing))).body["message"] == f'Key with ID "{missing}" not found'


async def test_case_26_27_list(api: Api) -> None:
    for name in ["b-key", "a-key", "c-key"]:
        await api.create(name)
    await api.create("zzz", project="unrelated")

    async def names(query: str) -> tuple[list[str], int]:
        reply = await api.call("GET", f"{KEYS}?projectId={P}{query}")
        assert reply.status == 200, reply
        return [k["name"] for k in reply.body["keys"]], reply.body["totalCount"]

    assert await names("") == (["a-key", "b-key", "c-key"], 3)
    assert await names("&orderDirection=desc") == (["c-key", "b-key", "a-key"], 3)
    assert await names("&limit=1&offset=1") == (["b-key"], 3)
    assert await names("&search=B-K") == (["b-key"], 1)
    assert await names("&offset=999") == ([], 0)
    for bad in ["limit=0", "limit=101", "orderBy=createdAt", "orderDirection=up", "offset=-1", "limit=ten"]:
        reply = await api.call("GET", f"{KEYS}?projectId={P}&{bad}")
        assert reply.status == 422, bad
    assert (await api.call("GET", KEYS)).status == 422


async def test_case_28_get_by_name(api: Api) -> None:
    key = await api.create("app-key")
    reply = await api.call("GET", f"{KEYS}/key-name/app-key?projectId={P}")
    assert reply.status == 200 and reply.body["key"]["id"] == key["id"]
    reply = await api.call("GET", f"{KEYS}/key-name/missing?projectId={P}")
    assert reply.status == 404
    assert reply.body["message"] == f'Key with name "missing" not found for project with ID "{P}"'
    reply = await api.call("GET", f"{KEYS}/key-name/app-key")
    assert reply.status == 422
    assert (await api.call("GET", f"{KEYS}/key-name/Bad_Name?projectId={P}")).status == 422


async def test_case_29_rename(api: Api) -> None:
    key = await api.create("app-key")
    await api.create("taken")
    reply = await api.call("PATCH", api.key(key["id"]), {"name": "renamed", "description": "new"})
    assert reply.status == 200
    assert (reply.body["key"]["name"], reply.body["key"]["version"]) == ("renamed", 1)
    assert reply.body["key"]["description"] == "new"
    dup = await api.call("PATCH", api.key(key["id"]), {"name": "taken"})
    assert dup.status == 400 and "already exists" in dup.body["message"]
    assert (await api.call("PATCH", api.key(key["id"]), {"name": "X"})).status == 422
    missing = str(uuid.uuid4())
    reply = await api.call("PATCH", api.key(missing), {"name": "y"})
    assert (reply.status, reply.body["message"]) == (404, f"Key with ID {missing} not found")


async def test_case_30_delete(api: Api) -> None:
    key = await api.create("gone")
    reply = await api.call("DELETE", api.key(key["id"]), {})  # the Python SDK sends `{}`
    assert reply.status == 200 and reply.body["key"]["id"] == key["id"]
    assert (await api.call("GET", api.key(key["id"]))).status == 404
    again = await api.call("DELETE", api.key(key["id"]))
    assert (again.status, again.body["message"]) == (404, f"Key with ID {key['id']} not found")


async def test_delete_protection(api: Api) -> None:
    key = await api.create("guarded", hasDeleteProtection=True)
    assert key["hasDeleteProtection"] is True
    refused = await api.call("DELETE", api.key(key["id"]))
    assert refused.status == 400
    assert (await api.call("PATCH", api.key(key["id"]), {"hasDeleteProtection": False})).status == 200
    assert (await api.call("DELETE", api.key(key["id"]))).status == 200
