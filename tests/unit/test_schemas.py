"""Request validation (spec §1.1-1.3, §2, §3): messages, codes and paths exactly as Infisical's."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kms_api.infisical import schemas as s
from kms_api.infisical.routes import ROUTES
from kms_api.schema.base64_fields import Base64, decode_base64
from kms_api.schema.composite_fields import Schema
from kms_api.schema.fields import INVALID, UUID_PATTERN, is_uuid
from kms_api.schema.openapi import build_openapi
from kms_core.errors import Issue
from kms_core.model import Algorithm, KeyUsage

SPEC_REGEX = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(==)?|[A-Za-z0-9+/]{3}=?)?$")


def parse(schema: Schema, data: Any) -> tuple[Any, list[dict[str, Any]]]:
    issues: list[Issue] = []
    out = schema.parse(data, (), issues)
    return out, [i.to_dict() for i in issues]


def messages(schema: Schema, data: Any) -> list[str]:
    return [i["message"] for i in parse(schema, data)[1]]


# ---------------------------------------------------------------- base64


@pytest.mark.parametrize("text", ["YQ", "YQ==", "YWI=", "YWJj", "AAAA", "+/+/", "YWJjZA"])
def test_base64_accepts(text: str) -> None:
    assert decode_base64(text) == base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "YQ=",
        "Y",
        "YQ==YQ==",
        "not base64!",
        "YQ ==",
        " YQ==",
        "YQ==\n",
        "a-b_",
        "data:text/plain;base64,YQ==",
        "Y===",
        "====",
        "YW=j",
        "é",
        "YWJj=",
    ],
)
def test_base64_rejects(text: str) -> None:
    assert decode_base64(text) is None
    assert not (text and SPEC_REGEX.fullmatch(text))


@given(st.text(alphabet="ABCXYZabcxyz0189+/=-_ \n", max_size=12))
def test_base64_fast_path_agrees_with_the_spec_regex(text: str) -> None:
    expected = bool(text) and bool(SPEC_REGEX.fullmatch(text))
    assert (decode_base64(text) is not None) == expected


@given(st.binary(max_size=64))
def test_base64_round_trips_padded_and_unpadded(data: bytes) -> None:
    encoded = base64.b64encode(data).decode()
    if data:
        assert decode_base64(encoded) == data
        assert decode_base64(encoded.rstrip("=")) == data


def test_base64_reports_format_and_size_together() -> None:
    schema = Schema([Base64("plaintext", label="data", limit=4)])
    out, issues = parse(schema, {"plaintext": "!" * 12})
    assert out is INVALID
    assert issues == [
        {"code": "custom", "message": "data must be base64 encoded", "path": ["plaintext"]},
        {"code": "custom", "message": "data cannot exceed 4 bytes", "path": ["plaintext"]},
    ]


def test_encrypt_limit_is_one_mebibyte() -> None:
    at_limit = base64.b64encode(bytes(1_048_576)).decode()
    over = base64.b64encode(bytes(1_048_577)).decode()
    assert parse(s.ENCRYPT, {"plaintext": at_limit})[0]["plaintext"] == bytes(1_048_576)
    assert messages(s.ENCRYPT, {"plaintext": over}) == ["data cannot exceed 1048576 bytes"]


@pytest.mark.parametrize(
    ("schema", "field", "label", "limit"),
    [
        (s.DECRYPT, "ciphertext", "ciphertext", 1_049_600),
        (s.VERIFY_MAC, "mac", "mac", 1024),
        (s.DERIVE, "publicKey", "publicKey", 1024),
    ],
)
def test_field_limits_and_labels(schema: Schema, field: str, label: str, limit: int) -> None:
    body = {"data": "YQ==", field: base64.b64encode(bytes(limit + 1)).decode()}
    assert f"{label} cannot exceed {limit} bytes" in messages(schema, body)
    body[field] = "%%"
    assert f"{label} must be base64 encoded" in messages(schema, body)


def test_missing_and_wrongly_typed_payloads() -> None:
    # zod v4 (Infisical's validator compiler calls z.safeDecode, a v4 API): a missing key is
    # `received undefined`, where v3 said "Required".
    assert parse(s.ENCRYPT, {})[1] == [{
        "expected": "string", "code": "invalid_type", "path": ["plaintext"],
        "message": "Invalid input: expected string, received undefined",
    }]  # fmt: skip
    assert messages(s.ENCRYPT, {"plaintext": 5}) == ["Invalid input: expected string, received number"]
    assert messages(s.SIGN, {"signingAlgorithm": "ECDSA_SHA_256", "data": "YQ", "isDigest": "true"}) == [
        "Invalid input: expected boolean, received string"
    ]
    assert parse(s.ENCRYPT, [])[1] == [{
        "expected": "object", "code": "invalid_type", "path": [],
        "message": "Invalid input: expected object, received array",
    }]  # fmt: skip
    _, issues = parse(s.BULK_IMPORT, {"projectId": "p", "keys": {}})
    assert issues[0]["message"] == "Invalid input: expected array, received object"


# ---------------------------------------------------------------- names, descriptions, enums


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("App_Key", ["Name field can only contain lowercase letters, numbers, and hyphens"]),
        ("a" * 33, ["Name field must be at most 32 lowercase characters"]),
        ("", ["Name field must be at least 1 lowercase character"]),
        ("   ", ["Name field must be at least 1 lowercase character"]),
        ("a--b", ["Name field can only contain lowercase letters, numbers, and hyphens"]),
        ("-ab", ["Name field can only contain lowercase letters, numbers, and hyphens"]),
        ("ab-", ["Name field can only contain lowercase letters, numbers, and hyphens"]),
        ("é", ["Name field can only contain lowercase letters, numbers, and hyphens"]),
        ("a1-b2", []),
        ("a" * 32, []),
    ],
)
def test_slug_rules(name: str, expected: list[str]) -> None:
    assert messages(s.CREATE_KEY, {"projectId": "p", "name": name}) == expected


def test_slug_is_trimmed_and_key_name_allows_64() -> None:
    assert parse(s.CREATE_KEY, {"projectId": "p", "name": "  app  "})[0]["name"] == "app"
    assert parse(s.KEY_NAME_PARAMS, {"keyName": "a" * 64})[0] == {"keyName": "a" * 64}
    assert messages(s.KEY_NAME_PARAMS, {"keyName": "a" * 65}) == [
        "Key name field must be at most 64 lowercase characters"
    ]
    assert messages(s.KEY_NAME_PARAMS, {"keyName": "Bad_Name"}) == [
        "Key name field can only contain lowercase letters, numbers, and hyphens"
    ]


def test_description() -> None:
    assert (
        parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "description": "x" * 500})[0]["description"]
        == "x" * 500
    )
    assert parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "description": " d "})[0]["description"] == "d"
    _, issues = parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "description": "x" * 501})
    assert [(i["code"], i["path"]) for i in issues] == [("too_big", ["description"])]
    assert messages(s.CREATE_KEY, {"projectId": "p", "name": "a", "description": None}) == [
        "Invalid input: expected string, received null"
    ]
    assert issues == [{
        "origin": "string", "code": "too_big", "maximum": 500, "inclusive": True, "path": ["description"],
        "message": "Too big: expected string to have <=500 characters",
    }]  # fmt: skip


def test_enum_issues() -> None:
    usages = ["encrypt-decrypt", "sign-verify", "generate-verify-mac", "key-agreement"]
    assert list(s.USAGES) == usages
    expected = {
        "code": "invalid_value", "values": usages, "path": ["keyUsage"],
        "message": 'Invalid option: expected one of "encrypt-decrypt"|"sign-verify"|"generate-verify-mac"'
                   '|"key-agreement"',
    }  # fmt: skip
    for wrong in ("encrypt", 5, None):  # zod v4: one issue whatever was received, never echoed
        _, issues = parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "keyUsage": wrong})
        assert issues == [expected], wrong
    _, issues = parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "algorithm": "aes-512-gcm"})
    assert [(i["code"], i["path"]) for i in issues] == [("invalid_value", ["algorithm"])]
    # A missing required enum is an enum mismatch too (zod v4 checks membership of `undefined`).
    entry = {"name": "imp", "algorithm": "aes-256-gcm", "keyMaterial": "YQ"}
    _, issues = parse(s.BULK_IMPORT, {"projectId": "p", "keys": [entry]})
    assert issues == [{**expected, "path": ["keys", 0, "keyUsage"]}]


# ---------------------------------------------------------------- create: usage and algorithm


def test_create_defaults() -> None:
    out, issues = parse(s.CREATE_KEY, {"projectId": "p", "name": "a"})
    assert issues == []
    assert out["keyUsage"] is KeyUsage.ENCRYPT_DECRYPT
    assert out["algorithm"] is Algorithm.AES_256_GCM
    assert out["isExportable"] is False
    assert out["hasDeleteProtection"] is False
    assert "encryptionAlgorithm" not in out


def test_sign_verify_without_algorithm_is_422() -> None:
    _, issues = parse(s.CREATE_KEY, {"projectId": "p", "name": "a", "keyUsage": "sign-verify"})
    assert issues == [
        {
            "code": "custom",
            "message": "algorithm must be a valid asymmetric sign-verify algorithm. Valid options are: "
            "RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_NIST_ED25519, ML_DSA_44, ML_DSA_65, "
            "ML_DSA_87",
            "path": ["algorithm"],
        }
    ]


def test_algorithm_alias() -> None:
    base = {"projectId": "p", "name": "a", "keyUsage": "sign-verify"}
    assert (
        parse(s.CREATE_KEY, {**base, "encryptionAlgorithm": "RSA_4096"})[0]["algorithm"] is Algorithm.RSA_4096
    )
    both = {**base, "algorithm": "ECC_NIST_P256", "encryptionAlgorithm": "RSA_4096"}
    assert parse(s.CREATE_KEY, both)[0]["algorithm"] is Algorithm.ECC_NIST_P256


def test_key_agreement_rejects_aes() -> None:
    msgs = messages(
        s.CREATE_KEY, {"projectId": "p", "name": "a", "keyUsage": "key-agreement", "algorithm": "aes-256-gcm"}
    )
    assert len(msgs) == 1 and re.search("key agreement algorithm", msgs[0], re.I)


# ---------------------------------------------------------------- uuid and list query


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (str(uuid.uuid4()), True),
        ("00000000-0000-4000-8000-000000000000", True),
        ("00000000-0000-0000-0000-000000000000", True),
        ("ffffffff-ffff-ffff-ffff-ffffffffffff", True),
        ("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", True),
        ("00000000-0000-0000-8000-000000000000", False),  # version 0
        ("00000000-0000-9000-8000-000000000000", False),  # version 9
        ("00000000-0000-4000-c000-000000000000", False),  # variant 110x
        ("not-a-uuid", False),
        ("00000000000040008000000000000000", False),
    ],
)
def test_uuid_strictness(text: str, ok: bool) -> None:
    assert is_uuid(text) is ok
    _, issues = parse(s.KEY_ID_PARAMS, {"keyId": text})
    assert (issues == []) is ok


def test_uuid_is_normalised_to_lower_case() -> None:
    out, _ = parse(s.KEY_ID_PARAMS, {"keyId": "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"})
    assert out["keyId"] == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def test_list_query_defaults_and_coercion() -> None:
    out, issues = parse(s.LIST_QUERY, {"projectId": "p"})
    assert issues == []
    assert (out["offset"], out["limit"], out["orderBy"], out["orderDirection"]) == (0, 100, "name", "asc")
    out, _ = parse(s.LIST_QUERY, {"projectId": "p", "limit": "7", "offset": "3", "search": " B-K "})
    assert (out["limit"], out["offset"], out["search"]) == (7, 3, "B-K")


@pytest.mark.parametrize(
    ("param", "value", "code"),
    [
        ("limit", "0", "too_small"),
        ("limit", "101", "too_big"),
        ("limit", "abc", "invalid_type"),
        ("offset", "-1", "too_small"),
        ("offset", "x1", "invalid_type"),
        ("limit", "1.5", "invalid_type"),
        ("orderBy", "createdAt", "invalid_value"),
        ("orderDirection", "up", "invalid_value"),
    ],
)
def test_list_query_rules(param: str, value: str, code: str) -> None:
    _, issues = parse(s.LIST_QUERY, {"projectId": "p", param: value})
    assert [(i["code"], i["path"]) for i in issues] == [(code, [param])]


def test_list_query_number_messages() -> None:
    assert parse(s.LIST_QUERY, {"projectId": "p", "limit": "0"})[1] == [{
        "origin": "number", "code": "too_small", "minimum": 1, "inclusive": True, "path": ["limit"],
        "message": "Too small: expected number to be >=1",
    }]  # fmt: skip
    too_big = ["Too big: expected number to be <=100"]
    assert messages(s.LIST_QUERY, {"projectId": "p", "limit": "101"}) == too_big
    assert messages(s.LIST_QUERY, {"projectId": "p", "offset": "x"}) == [
        "Invalid input: expected number, received NaN"  # z.coerce.number(): Number("x") is NaN
    ]


def test_project_id_required_for_get_by_name() -> None:
    assert messages(s.PROJECT_QUERY, {"projectId": ""}) == ["Project ID is required"]
    assert messages(s.PROJECT_QUERY, {}) == ["Invalid input: expected string, received undefined"]


# ---------------------------------------------------------------- bulk requests


def test_bulk_import_entry_rules() -> None:
    material = base64.b64encode(bytes(32)).decode()
    entry = {"name": "imp", "keyUsage": "encrypt-decrypt", "keyMaterial": material}
    assert messages(s.BULK_IMPORT, {"projectId": "p", "keys": [entry]}) == ["algorithm is required"]
    wrong = {**entry, "algorithm": "RSA_4096", "keyUsage": "generate-verify-mac"}
    _, issues = parse(s.BULK_IMPORT, {"projectId": "p", "keys": [wrong]})
    assert issues == [
        {
            "code": "custom",
            "message": "algorithm must be an HMAC algorithm for generate-verify-mac keys",
            "path": ["keys", 0, "algorithm"],
        }
    ]
    bad = {**entry, "algorithm": "aes-256-gcm", "keyMaterial": "%"}
    assert messages(s.BULK_IMPORT, {"projectId": "p", "keys": [bad]}) == [
        "keyMaterial must be base64 encoded"
    ]
    out, _ = parse(
        s.BULK_IMPORT, {"projectId": "p", "keys": [{**entry, "encryptionAlgorithm": "aes-128-gcm"}]}
    )
    assert out["keys"][0]["algorithm"] is Algorithm.AES_128_GCM
    too_small = ["Too small: expected array to have >=1 items"]
    assert messages(s.BULK_IMPORT, {"projectId": "p", "keys": []}) == too_small


def test_bulk_export_ids() -> None:
    ids = [str(uuid.uuid4()) for _ in range(101)]
    assert messages(s.BULK_EXPORT, {"keyIds": ids}) == ["Too big: expected array to have <=100 items"]
    _, issues = parse(s.BULK_EXPORT, {"keyIds": ["nope"]})
    assert issues == [{
        "origin": "string", "code": "invalid_format", "format": "uuid", "pattern": UUID_PATTERN,
        "path": ["keyIds", 0], "message": "Invalid UUID",
    }]  # fmt: skip


# ---------------------------------------------------------------- openapi from the same definitions


def test_openapi_is_generated_from_the_validating_schemas() -> None:
    doc = build_openapi(ROUTES)
    operation_ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {r.name for r in ROUTES} == operation_ids
    create = doc["components"]["schemas"]["CreateKmsKeyBody"]
    assert create == s.CREATE_KEY.doc()
    assert create["properties"]["name"]["maxLength"] == 32
    assert create["required"] == ["projectId", "name"]
    encrypt = doc["paths"]["/api/v1/kms/keys/{keyId}/encrypt"]["post"]
    assert encrypt["parameters"][0]["schema"]["format"] == "uuid"
    assert "1048576" in doc["components"]["schemas"]["EncryptBody"]["properties"]["plaintext"]["description"]


def test_store_defaults_to_kubernetes_inside_a_pod() -> None:
    from kms_api.settings import load_settings

    assert load_settings([], {}).store == "embedded"
    assert load_settings([], {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).store == "kubernetes"
    assert load_settings(["--store", "embedded"], {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).store == "embedded"


def test_cors_origins_from_flag_or_environment() -> None:
    from kms_api.settings import load_settings

    assert load_settings([], {}).cors_origins == ()  # off by default
    env = {"KUBEKMS_CORS_ORIGINS": "https://app.example.com, http://localhost:3000/"}
    assert load_settings([], env).cors_origins == ("https://app.example.com", "http://localhost:3000")
    flag = ["--cors-origins", "HTTPS://App.Example.com:443,https://b.example:8443,https://b.example:8443"]
    assert load_settings(flag, env).cors_origins == ("https://app.example.com", "https://b.example:8443")
    assert load_settings(["--cors-origins", "http://[::1]:8080"], {}).cors_origins == ("http://[::1]:8080",)


@pytest.mark.parametrize(
    "origin", ["*", "https://*.example.com", "app.example.com", "ftp://x.example", "https://x.example/app",
               "https://user@x.example", "https://x.example:99999", "https://x.example?q=1"],
)  # fmt: skip
def test_cors_origins_must_be_plain_origins(origin: str) -> None:
    from kms_api.settings import load_settings
    from kms_core.errors import ConfigError

    with pytest.raises(ConfigError, match="--cors-origins takes origins like"):
        load_settings(["--cors-origins", origin], {})


@pytest.mark.parametrize(
    "text",
    ["6f1c1b1e-8a50-4c3e-9a43-1f2b3c4d5e6f", "6F1C1B1E-8A50-4C3E-9A43-1F2B3C4D5E6F",
     "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
     "6f1c1b1e-8a50-0c3e-9a43-1f2b3c4d5e6f", "6f1c1b1e-8a50-4c3e-7a43-1f2b3c4d5e6f",
     "6f1c1b1e8a504c3e9a431f2b3c4d5e6f", "nope"],
)  # fmt: skip
def test_reported_uuid_pattern_is_the_one_enforced(text: str) -> None:
    """The `pattern` a 422 reports (zod v4's regex, as JavaScript prints it) accepts exactly what
    the server accepts."""
    assert UUID_PATTERN.startswith("/^") and UUID_PATTERN.endswith("$/")
    assert bool(re.fullmatch(UUID_PATTERN[2:-2], text)) == is_uuid(text)
