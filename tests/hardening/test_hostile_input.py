"""Hostile input corpus against a real `kubekms-api` process, over raw sockets.

Every request below is wrong in some way (types, missing fields, nulls, huge numbers, deep
nesting, invalid UTF-8, content types, sizes, chunking, ids, path tricks, header floods, bad
credentials). Each must get a 4xx JSON error in the spec's shape, never a 500, and the process
must stay healthy: /healthz answers and a real encrypt/decrypt round trip works afterwards.
SQL-like and wildcard `search` strings are valid requests: they must answer 200 with the
ILIKE semantics of spec §2.4 and never match through injection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fixtures.api import ADMIN, OPERATOR, VIEWER, ApiProcess, P, b64, unb64
from hardening.rawhttp import assert_error_shape, build, send

K = "/api/v1/kms/keys"
D = "/api/v1/kms/deleted-keys"
MISSING = "00000000-0000-4000-8000-000000000000"


def _call(port: int, method: str, path: str, payload: object = None, token: str | None = ADMIN) -> dict:
    body = None if payload is None else json.dumps(payload).encode()
    reply = send(port, build(method, path, body=body, token=token))
    assert reply.status == 200, (path, reply.status, reply.body)
    return dict(reply.json())


@pytest.fixture(scope="module")
def keys(live_api: ApiProcess) -> dict[str, str]:
    port = live_api.port
    made = {}
    for name, extra in {
        "aes": {},
        "ec": {"keyUsage": "sign-verify", "algorithm": "ECC_NIST_P256"},
        "mac": {"keyUsage": "generate-verify-mac", "algorithm": "HMAC_SHA_256"},
        "ecdh": {"keyUsage": "key-agreement", "algorithm": "ECC_NIST_P256"},
    }.items():
        made[name] = _call(port, "POST", K, {"projectId": P, "name": f"h-{name}", **extra})["key"]["id"]
    for name in ("a-b", "ab", "axb", "sql"):
        _call(port, "POST", K, {"projectId": "search", "name": name})
    return made


# ----------------------------------------------------------------------------- the corpus

Case = tuple[str, bytes]  # (description, raw request)


def _valid_bodies(k: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """One valid body per body-carrying route: the starting point of the mutations."""
    return {
        "create": (K, {"projectId": P, "name": "fresh"}),
        # With the lifecycle extensions: any one of them wrong is a 400 (a bound the key cannot
        # take) or a 422, so the update never applies.
        "update": (f"{K}/{k['aes']}", {"name": "renamed", "description": "d", "isDisabled": False,
                                       "rotationPeriod": "24h", "minDecryptionVersion": 1}),
        "restore": (f"{D}/{MISSING}/restore", {"name": "back"}),
        "encrypt": (f"{K}/{k['aes']}/encrypt", {"plaintext": "aGVsbG8="}),
        "decrypt": (f"{K}/{k['aes']}/decrypt", {"ciphertext": "aGVsbG8="}),
        "sign": (
            f"{K}/{k['ec']}/sign",
            {"signingAlgorithm": "ECDSA_SHA_256", "data": "YQ==", "isDigest": False},
        ),
        "verify": (
            f"{K}/{k['ec']}/verify",
            {"signingAlgorithm": "ECDSA_SHA_256", "data": "YQ==", "signature": "YQ==", "isDigest": False},
        ),
        "generate-mac": (f"{K}/{k['mac']}/generate-mac", {"data": "YQ=="}),
        "verify-mac": (f"{K}/{k['mac']}/verify-mac", {"data": "YQ==", "mac": "YQ=="}),
        "derive": (f"{K}/{k['ecdh']}/derive-shared-secret", {"publicKey": "YQ=="}),
        "bulk-export": (f"{K}/bulk-export-private-keys", {"keyIds": [k["aes"]]}),
        "bulk-import": (
            f"{K}/bulk-import",
            {"projectId": P, "keys": [{"name": "imp", "keyUsage": "encrypt-decrypt",
                                        "algorithm": "aes-256-gcm", "keyMaterial": "YQ=="}]},
        ),
        "login": ("/api/v1/auth/universal-auth/login", {"clientId": "x", "clientSecret": "y"}),
    }  # fmt: skip


def _method(route: str) -> str:
    return "PATCH" if route == "update" else "POST"


def _body_cases(k: dict[str, str]) -> Iterator[Case]:
    for route, (path, valid) in _valid_bodies(k).items():
        method = _method(route)
        fields = list(valid)
        wrong_values: list[object] = [123, 1.5, True, None, [], {}, 10**40, -(10**40)]
        # Top-level non-objects and an empty object.
        for raw in (b"null", b"[]", b'"text"', b"123", b"true", b"{}"):
            if route == "update" and raw == b"{}":
                continue  # an empty update is valid (spec §2.2)
            yield f"{route} body {raw!r}", build(method, path, body=raw, token=ADMIN)
        # Every field with wrong types (booleans where booleans are valid are skipped).
        for name in fields:
            for value in wrong_values:
                if isinstance(valid[name], bool) and isinstance(value, bool):
                    continue
                if route == "update" and value is None:
                    continue  # PATCH fields are optional; null is rejected only for some (checked below)
                body = json.dumps({**valid, name: value}).encode()
                yield f"{route}.{name}={value!r:.20}", build(method, path, body=body, token=ADMIN)
        # Missing required fields (with an extra unknown field that must not make it acceptable).
        for name in fields:
            if route == "update" or isinstance(valid[name], bool):
                continue
            rest = {f: v for f, v in valid.items() if f != name}
            body = json.dumps({**rest, "__proto__": {"isAdmin": True}, "extra": 1}).encode()
            yield f"{route} without {name}", build(method, path, body=body, token=ADMIN)
        # Huge integer literal beyond 64 bits, deep nesting, invalid UTF-8, non-JSON.
        yield f"{route} huge int", build(method, path, body=b'{"x": 1' + b"0" * 400 + b"}", token=ADMIN)
        yield f"{route} deep", build(method, path, body=b"[" * 100_000 + b"]" * 100_000, token=ADMIN)
        bad_utf8 = json.dumps(valid).encode().replace(b"{", b'{"\xff\xfe": "\xc3\x28", ', 1)
        yield f"{route} invalid utf-8", build(method, path, body=bad_utf8, token=ADMIN)
        yield f"{route} not json", build(method, path, body=b"{'single': quotes}", token=ADMIN)
        yield f"{route} trailing", build(method, path, body=json.dumps(valid).encode() + b"{", token=ADMIN)
        # Content types and empty bodies.
        good = json.dumps(valid).encode()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            yield f"{route} as {ctype}", build(method, path, body=good, token=ADMIN, content_type=ctype)
        yield f"{route} no content type", build(method, path, body=good, token=ADMIN, content_type=None)
        yield f"{route} empty", build(method, path, body=b"", token=ADMIN)
        yield f"{route} whitespace", build(method, path, body=b"   \n ", token=ADMIN)


def _size_and_chunking_cases(k: dict[str, str]) -> Iterator[Case]:
    enc = f"{K}/{k['aes']}/encrypt"
    big = b'{"plaintext": "' + b"A" * (3 * 1024 * 1024) + b'"}'
    yield "encrypt body over 2 MiB", build("POST", enc, body=big, token=ADMIN)
    yield (
        "create body over 1 MiB",
        build("POST", K, body=b'{"name": "' + b"a" * (1100 * 1024) + b'"}', token=ADMIN),
    )
    yield (
        "declared length over limit",
        build("POST", enc, body=b"{}", token=ADMIN, headers=[("Content-Length", str(50 * 1024 * 1024))]),
    )
    chunked = [("Transfer-Encoding", "chunked")]
    yield (
        "chunked over limit",
        build(
            "POST",
            enc,
            body=b"".join([b"100000\r\n" + b"A" * 0x100000 + b"\r\n"] * 3) + b"0\r\n\r\n",
            token=ADMIN,
            headers=chunked,
        ),
    )
    yield (
        "chunked invalid json",
        build("POST", enc, body=b"3\r\n{x}\r\n0\r\n\r\n", token=ADMIN, headers=chunked),
    )
    yield "chunked bad size", build("POST", enc, body=b"zz\r\n{}\r\n0\r\n\r\n", token=ADMIN, headers=chunked)
    yield (
        "chunked and length",
        build(
            "POST",
            enc,
            body=b"2\r\n{}\r\n0\r\n\r\n",
            token=ADMIN,
            headers=[*chunked, ("Content-Length", "9")],
        ),
    )
    yield "negative length", build("POST", enc, body=b"{}", token=ADMIN, headers=[("Content-Length", "-1")])
    yield "two lengths", build(
        "POST", enc, body=b"{}", token=ADMIN, headers=[("Content-Length", "2"), ("Content-Length", "3")]
    )  # fmt: skip


def _path_cases(k: dict[str, str]) -> Iterator[Case]:
    ids = ["not-a-uuid", "1", "ключ-🔑", "%00", "%ff%fe", "A" * 5000, MISSING.upper().replace("4", "9", 1),
           "00000000-0000-0000-0000-00000000000g", "{keyId}", "%7BkeyId%7D", "' OR '1'='1",
           MISSING + "x"]  # fmt: skip
    for key_id in ids:
        for op, method in (("", "GET"), ("encrypt", "POST"), ("public-key", "GET"), ("", "DELETE")):
            path = f"{K}/{key_id}" + (f"/{op}" if op else "")
            body = b'{"plaintext": "YQ=="}' if op == "encrypt" else None
            yield f"{method} id {key_id[:20]!r} {op}", build(method, path, body=body, token=ADMIN)
    for key_id in ids:
        for path, method in ((f"{K}/{key_id}/versions", "GET"), (f"{D}/{key_id}/restore", "POST"),
                             (f"{D}/{key_id}", "DELETE")):  # fmt: skip
            body = b"{}" if method == "POST" else None
            yield f"{method} lifecycle {path[:60]!r}", build(method, path, body=body, token=ADMIN)
    for query in ("", "?projectId=", "?projectid=proj"):
        yield f"deleted keys {query[:20]!r}", build("GET", D + query, token=ADMIN)
    yield "operator lists deleted keys", build("GET", f"{D}?projectId={P}", token=OPERATOR)
    yield (
        "missing key encrypt",
        build("POST", f"{K}/{MISSING}/encrypt", body=b'{"plaintext":"YQ=="}', token=ADMIN),
    )
    tricks = [
        f"{K}/{k['aes']}/../../keys", f"{K}/..%2f..%2fkeys", f"{K}%2f{k['aes']}",
        f"//api//v1//kms//keys//{k['aes']}",
        f"{K}/{k['aes']}/encrypt/..", f"{K}/{k['aes']}%2fencrypt", f"{K}/./{k['aes']}/./nothing",
        f"{K}/{k['aes']}/encrypt%00", "/api/v1/kms/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
        f"{K}/key-name/Bad_Name?projectId={P}", f"{K}/key-name/{'a' * 65}?projectId={P}",
        f"{K}/key-name/ok", f"{K}?projectId={P}&limit=0", f"{K}?projectId={P}&limit=1{'0' * 40}",
        f"{K}?projectId={P}&offset=-1", f"{K}?projectId={P}&orderBy=createdAt",
        f"{K}?projectId={P}&orderDirection=up",
        f"{K}?projectId={P}&limit=abc", f"{K}?limit=1", f"{K}?projectId={P}&offset=x1",
        "/api/v1/kms/keys-extra", "/api/v2/kms/keys", "/nothing", "/healthz/../../x", "/%",
    ]  # fmt: skip
    for path in tricks:
        yield f"path {path[:60]}", build("GET", path, token=ADMIN)
    for method in ("PUT", "TRACE", "OPTIONS", "FOO", "CONNECT"):
        yield f"method {method}", build(method, f"{K}/{k['aes']}", token=ADMIN)


def _auth_and_header_cases(k: dict[str, str]) -> Iterator[Case]:
    path = f"{K}/{k['aes']}"
    for value in ("", "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "bearer\tx", "Bearer " + "x" * 5000,
                  "Bearer ' OR 1=1 --", "Token x",
                  "Bearer eyJhbGciOiJub25lIn0.eyJpZGVudGl0eUlkIjoicm9ib3QifQ."):  # fmt: skip
        yield f"auth {value[:30]!r}", build("GET", path, headers=[("Authorization", value)])
    yield "no auth", build("GET", path)
    yield "viewer encrypts", build("POST", f"{path}/encrypt", body=b'{"plaintext":"YQ=="}', token=VIEWER)
    yield "operator deletes", build("DELETE", path, token=OPERATOR)
    yield "many headers", build("GET", path, token=ADMIN, headers=[(f"X-H{i}", "v") for i in range(300)])
    yield "huge header value", build("GET", path, token=ADMIN, headers=[("X-Big", "v" * 20_000)])
    yield "huge auth header", build("GET", path, headers=[("Authorization", "Bearer " + "t" * 20_000)])
    yield "long url", build("GET", f"{K}?projectId={'p' * 20_000}", token=ADMIN)
    yield "header without colon", build("GET", path, token=ADMIN, headers=[("X-Broken\r\nNoColonHere", "v")])
    yield "bad request line", b"GET /healthz HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n"
    yield "binary request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"
    yield "invalid utf-8 path", build("GET", f"{K}/\udcff\udcfe", token=ADMIN)


def corpus(k: dict[str, str]) -> list[Case]:
    cases = [
        *_body_cases(k),
        *_size_and_chunking_cases(k),
        *_path_cases(k),
        *_auth_and_header_cases(k),
    ]
    return cases


def test_every_hostile_request_gets_a_4xx_json_error(live_api: ApiProcess, keys: dict[str, str]) -> None:
    cases = corpus(keys)
    assert len(cases) >= 150
    seen_statuses: set[int] = set()
    failures = []
    for description, request in cases:
        reply = send(live_api.port, request, timeout=20)
        seen_statuses.add(reply.status)
        try:
            assert_error_shape(reply, description)
        except AssertionError as exc:
            failures.append(str(exc)[:200])
    assert failures == []
    # The corpus exercises every class of refusal, not only one.
    assert {400, 401, 403, 404, 413, 422, 431} <= seen_statuses, seen_statuses
    assert "Traceback" not in live_api.logs() and '"status":500' not in live_api.logs()

    # Still healthy, and still doing real cryptography.
    assert send(live_api.port, build("GET", "/healthz")).status == 200
    ct = _call(live_api.port, "POST", f"{K}/{keys['aes']}/encrypt", {"plaintext": b64(b"after")})[
        "ciphertext"
    ]
    pt = _call(live_api.port, "POST", f"{K}/{keys['aes']}/decrypt", {"ciphertext": ct})["plaintext"]
    assert unb64(pt) == b"after"


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("a-b", ["a-b"]),
        ("A_B", ["a-b", "axb"]),  # `_` is a single-character wildcard (unescaped, as Infisical)
        ("%", ["a-b", "ab", "axb", "sql"]),
        ("' OR 1=1 --", []),
        ('"; DROP TABLE keys; --', []),
        ("sql') OR ('1'='1", []),
        ("\\", []),
        ("%%_%%", ["a-b", "ab", "axb", "sql"]),
    ],
)
def test_search_strings_are_data_not_sql(
    live_api: ApiProcess, keys: dict[str, str], search: str, expected: list[str]
) -> None:
    from urllib.parse import quote

    reply = send(live_api.port, build("GET", f"{K}?projectId=search&search={quote(search)}", token=ADMIN))
    assert reply.status == 200, reply.body
    assert sorted(k["name"] for k in reply.json()["keys"]) == expected
    # The table survived every attempt.
    assert len(_call(live_api.port, "GET", f"{K}?projectId=search")["keys"]) == 4
