"""Transit `backup/:name` and `restore(/:name)` against a real OpenBao: keys of every type with two
versions move both ways, and what either side made before the move (ciphertexts of both versions,
signatures, HMACs) decrypts and verifies on the other after it; refusals are OpenBao's texts (its
500s are KubeKMS's 400s); a caller without the permission in the key's namespace gets 403."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from servers import KubeKms, OpenBao, Server

from fixtures.api import OPERATOR, OTHER, PROJECT_ADMIN, VIEWER, P

pytestmark = pytest.mark.integration

HELLO = base64.b64encode(b"hello backup").decode()
TYPES = [
    "aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521",
    "ed25519", "rsa-2048", "rsa-3072", "rsa-4096", "hmac",
]  # fmt: skip
ENCRYPTS = {"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072", "rsa-4096"}
SIGNS = {"ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096"}


def call(
    server: Server, method: str, path: str, body: Any = None, token: str | None = None,
    namespace: str | None = None,
) -> requests.Response:
    headers = {"X-Vault-Token": token or server.token}
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    return requests.request(method, f"{server.url}/v1/{path}", json=body, headers=headers, timeout=120)


def ok(reply: requests.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json() if reply.content else None


def make_key(server: Server, name: str, key_type: str) -> None:
    body = {"type": key_type, "exportable": True, "allow_plaintext_backup": True}
    if key_type == "hmac":
        body["key_size"] = 32
    ok(call(server, "POST", f"transit/keys/{name}", body))
    ok(call(server, "POST", f"transit/keys/{name}/rotate", {}))


def artifacts(
    server: Server, name: str, key_type: str, macs: bool
) -> list[tuple[str, dict[str, Any], str | None]]:
    """What `server` makes with both versions of `name`: (check path, body, expected plaintext).
    `macs`: HMACs too (both sides hold the same HMAC keys: an hmac key's own material, or the
    derived HMAC keys a KubeKMS backup carries; OpenBao's random ones are not restored: README)."""
    made: list[tuple[str, dict[str, Any], str | None]] = []
    for version in (1, 2):
        if key_type in ENCRYPTS:
            body = {"plaintext": HELLO, "key_version": version}
            ct = ok(call(server, "POST", f"transit/encrypt/{name}", body))["data"]["ciphertext"]
            assert ct.startswith(f"vault:v{version}:")
            made.append((f"transit/decrypt/{name}", {"ciphertext": ct}, HELLO))
        if key_type in SIGNS:
            body = {"input": HELLO, "key_version": version}
            sig = ok(call(server, "POST", f"transit/sign/{name}", body))["data"]["signature"]
            made.append((f"transit/verify/{name}", {"input": HELLO, "signature": sig}, None))
        if macs:
            body = {"input": HELLO, "key_version": version}
            mac = ok(call(server, "POST", f"transit/hmac/{name}", body))["data"]["hmac"]
            made.append((f"transit/verify/{name}", {"input": HELLO, "hmac": mac}, None))
    return made


def check(server: Server, made: list[tuple[str, dict[str, Any], str | None]]) -> None:
    for path, body, plaintext in made:
        data = ok(call(server, "POST", path, body))["data"]
        if plaintext is not None:
            assert data["plaintext"] == plaintext, (server.name, path)
        else:
            assert data["valid"] is True, (server.name, path, body)


def backup_of(server: Server, name: str) -> str:
    backup: str = ok(call(server, "GET", f"transit/backup/{name}"))["data"]["backup"]
    return backup


@pytest.mark.parametrize("key_type", TYPES)
def test_every_key_type_moves_both_ways_with_its_versions(
    openbao: OpenBao, kubekms: KubeKms, key_type: str
) -> None:
    short = key_type.replace("-gcm96", "").replace("-poly1305", "")
    for source, target in ((openbao, kubekms), (kubekms, openbao)):
        name = f"b-{short}-{source.name[:3]}"
        make_key(source, name, key_type)
        macs = key_type == "hmac" or source is kubekms
        made = artifacts(source, name, key_type, macs)
        backup = backup_of(source, name)
        document = json.loads(base64.b64decode(backup))
        assert document["policy"]["latest_version"] == 2 and len(document["archived_keys"]["keys"]) == 3
        assert ok(call(target, "POST", f"transit/restore/{name}", {"backup": backup}), 204) is None
        read = ok(call(target, "GET", f"transit/keys/{name}"))["data"]
        assert (read["type"], read["latest_version"], read["exportable"], read["allow_plaintext_backup"]) == (
            key_type, 2, True, True)  # fmt: skip
        assert read["imported_key"] is False and "imported_key_allow_rotation" not in read
        check(target, made)
        if key_type in SIGNS:  # the public keys are the same on both sides
            mine = ok(call(source, "GET", f"transit/keys/{name}"))["data"]["keys"]
            assert {v: k["public_key"] for v, k in read["keys"].items()} == {
                v: k["public_key"] for v, k in mine.items()}  # fmt: skip
        # The moved key makes what its source checks: the same material, versions and numbering.
        check(source, artifacts(target, name, key_type, macs))


def test_a_backup_is_openbao_s_document(kubekms: KubeKms) -> None:
    """Field names, order and encodings of OpenBao's `KeyData`, the policy's settings included."""
    make_key(kubekms, "doc", "ecdsa-p256")
    ok(call(kubekms, "POST", "transit/keys/doc/rotate", {}))
    ok(call(kubekms, "POST", "transit/keys/doc/config", {
        "min_decryption_version": 2, "min_encryption_version": 3, "auto_rotate_period": "2h",
        "deletion_allowed": True}))  # fmt: skip
    ok(call(kubekms, "POST", "transit/keys/doc/trim", {"min_available_version": 2}))
    raw = base64.b64decode(backup_of(kubekms, "doc"))
    assert raw.endswith(b"}\n") and raw.startswith(b'{"policy":{"name":"doc","keys":{"2":{"key":null,')
    policy = json.loads(raw)["policy"]
    assert list(policy) == [
        "name", "keys", "derived", "kdf", "convergent_encryption", "exportable", "min_decryption_version",
        "min_encryption_version", "latest_version", "archive_version", "archive_min_version",
        "min_available_version", "deletion_allowed", "convergent_version", "type", "backup_info",
        "restore_info", "allow_plaintext_backup", "version_template", "storage_prefix",
        "auto_rotate_period", "Imported", "AllowImportedKeyRotation", "soft_deleted",
    ]  # fmt: skip
    settings = (policy["type"], policy["auto_rotate_period"], policy["deletion_allowed"])
    assert settings == (1, 7200 * 10**9, True)
    assert (policy["archive_min_version"], policy["min_available_version"], sorted(policy["keys"])) == (
        2, 2, ["2", "3"])  # fmt: skip
    entry = policy["keys"]["3"]
    assert isinstance(entry["ec_d"], int) and entry["public_key"].startswith("-----BEGIN PUBLIC KEY-----\n")
    archive = json.loads(raw)["archived_keys"]["keys"]
    assert len(archive) == 2  # versions 2 and 3: version 1 was trimmed
    assert all(e["ec_x"] == policy["keys"][str(v)]["ec_x"] for v, e in zip((2, 3), archive, strict=True))


def test_policy_and_trim_survive_a_restore_into_openbao_and_back(openbao: OpenBao, kubekms: KubeKms) -> None:
    make_key(kubekms, "pol", "aes256-gcm96")
    ok(call(kubekms, "POST", "transit/keys/pol/rotate", {}))
    old = ok(call(kubekms, "POST", "transit/encrypt/pol", {"plaintext": HELLO, "key_version": 2}))
    ok(call(kubekms, "POST", "transit/keys/pol/config", {
        "min_decryption_version": 2, "min_encryption_version": 3, "auto_rotate_period": "3h"}))  # fmt: skip
    ok(call(kubekms, "POST", "transit/keys/pol/trim", {"min_available_version": 2}))
    ok(call(openbao, "POST", "transit/restore", {"backup": backup_of(kubekms, "pol")}), 204)
    theirs = ok(call(openbao, "GET", "transit/keys/pol"))["data"]
    ok(call(kubekms, "POST", "transit/restore/pol2", {"backup": backup_of(openbao, "pol")}), 204)
    ours = ok(call(kubekms, "GET", "transit/keys/pol2"))["data"]
    fields = ("latest_version", "min_decryption_version", "min_encryption_version", "min_available_version",
              "auto_rotate_period", "exportable", "allow_plaintext_backup", "deletion_allowed")  # fmt: skip
    assert {f: ours[f] for f in fields} == {f: theirs[f] for f in fields} == {
        "latest_version": 3, "min_decryption_version": 2, "min_encryption_version": 3,
        "min_available_version": 2, "auto_rotate_period": 10800, "exportable": True,
        "allow_plaintext_backup": True, "deletion_allowed": False}  # fmt: skip
    assert sorted(ours["keys"]) == sorted(theirs["keys"]) == ["2", "3"]
    for server, name in ((openbao, "pol"), (kubekms, "pol2")):
        data = ok(call(server, "POST", f"transit/decrypt/{name}", {"ciphertext": old["data"]["ciphertext"]}))
        assert data["data"]["plaintext"] == HELLO


def _multierror(text: str) -> str:
    return f"1 error occurred:\n\t* {text}\n\n"


def test_refusals_are_openbao_s(openbao: OpenBao, kubekms: KubeKms) -> None:
    """OpenBao's texts; its 500s are KubeKMS's 400s. Nothing is restored by a refused request."""
    for server in (openbao, kubekms):
        ok(call(server, "POST", "transit/keys/r-closed", {}))
        ok(call(server, "POST", "transit/keys/r-export", {"exportable": True}))
        ok(call(server, "POST", "transit/keys/r-plain", {"allow_plaintext_backup": True}))
        make_key(server, "r-soft", "aes256-gcm96")
        ok(call(server, "DELETE", "transit/keys/r-soft/soft-delete"))
        make_key(server, "r-exists", "aes256-gcm96")
    refusals: list[tuple[str, str, Any, int, str]] = [
        ("GET", "transit/backup/r-closed", None, 500, "exporting is disallowed on the policy"),
        ("GET", "transit/backup/r-export", None, 500, "plaintext backup is disallowed on the policy"),
        ("GET", "transit/backup/r-plain", None, 500, "exporting is disallowed on the policy"),
        ("GET", "transit/backup/r-none", None, 500, 'key "r-none" not found'),
        ("GET", "transit/backup/r-soft", None, 500, "refusing to use soft-deleted key"),
        ("POST", "transit/restore", {}, 400, "'backup' must be supplied"),
        ("POST", "transit/restore", {"backup": "!!!"}, 500, "illegal base64 data at input byte 0"),
        ("POST", "transit/restore", {"backup": "$exists"}, 500, 'key "r-exists" already exists'),
        ("POST", "transit/restore/r-exists", {"backup": "$exists"}, 500, 'key "r-exists" already exists'),
        # OpenBao 2.7 ignores a body's `name` (the empty path parameter wins): the backup's name.
        ("POST", "transit/restore", {"backup": "$exists", "name": "r-new"}, 500,
         'key "r-exists" already exists'),
    ]
    for server in (openbao, kubekms):
        saved = {"$exists": backup_of(server, "r-exists")}
        for method, path, body, status, text in refusals:
            sent = {k: saved.get(v, v) for k, v in body.items()} if body is not None else None
            reply = call(server, method, path, sent)
            expected = (status, [_multierror(text) if status == 500 else text])
            if server is kubekms:
                expected = (400, [text])
            assert (reply.status_code, reply.json()["errors"]) == expected, (server.name, path, body)
        force = call(server, "POST", "transit/restore", {"backup": saved["$exists"], "force": "maybe"})
        assert force.status_code == 400 and "strconv.ParseBool" in force.json()["errors"][0], server.name
    for bad in (b"not json", b'{"policy": 3}', b'{"policy": {"name": "r-new", "type": 99}}'):
        reply = call(kubekms, "POST", "transit/restore", {"backup": base64.b64encode(bad).decode()})
        assert reply.status_code == 400 and reply.json()["errors"][0].startswith("invalid backup"), bad
    assert call(kubekms, "GET", "transit/keys/r-new").status_code == 404


def test_force_replaces_and_the_path_names_the_key(kubekms: KubeKms) -> None:
    make_key(kubekms, "f-one", "aes256-gcm96")
    make_key(kubekms, "f-two", "aes256-gcm96")
    ct = ok(call(kubekms, "POST", "transit/encrypt/f-one", {"plaintext": HELLO}))["data"]["ciphertext"]
    backup = backup_of(kubekms, "f-one")
    ok(call(kubekms, "POST", "transit/restore/f-two", {"backup": backup, "force": True}), 204)
    plain = ok(call(kubekms, "POST", "transit/decrypt/f-two", {"ciphertext": ct}))["data"]["plaintext"]
    assert plain == HELLO
    ok(call(kubekms, "POST", "transit/restore/f-three", {"backup": backup, "name": "f-four"}), 204)
    assert call(kubekms, "GET", "transit/keys/f-three").status_code == 200  # the path's name wins
    assert call(kubekms, "GET", "transit/keys/f-four").status_code == 404


def test_imported_flags_travel_in_the_backup(openbao: OpenBao, kubekms: KubeKms) -> None:
    """`Imported` and `AllowImportedKeyRotation` are restored: rotation stays refused."""
    make_key(openbao, "imp", "aes256-gcm96")
    document = json.loads(base64.b64decode(backup_of(openbao, "imp")))
    document["policy"]["Imported"] = True
    forged = base64.b64encode(json.dumps(document).encode()).decode()
    ok(call(kubekms, "POST", "transit/restore", {"backup": forged}), 204)
    read = ok(call(kubekms, "GET", "transit/keys/imp"))["data"]
    assert (read["imported_key"], read["imported_key_allow_rotation"]) == (True, False)
    refused = call(kubekms, "POST", "transit/keys/imp/rotate", {})
    assert (refused.status_code, refused.json()["errors"]) == (
        400, ["imported key imp does not allow rotation within Vault"])  # fmt: skip


def test_a_caller_without_the_permission_in_the_namespace_gets_403(kubekms: KubeKms) -> None:
    """team-b's admin (OTHER, admin of `elsewhere`) can neither read nor overwrite a backup of a
    key of project P; backup needs `export-private-key` (an operator lacks it), restore `create`."""
    ok(call(kubekms, "POST", "transit/keys/t-a", {"exportable": True, "allow_plaintext_backup": True},
            token=PROJECT_ADMIN, namespace=P))  # fmt: skip
    reply = call(kubekms, "GET", "transit/backup/t-a", token=PROJECT_ADMIN, namespace=P)
    backup = ok(reply)["data"]["backup"]
    denied = {"errors": ["permission denied"]}
    for token in (OTHER, OPERATOR, VIEWER):
        reply = call(kubekms, "GET", "transit/backup/t-a", token=token, namespace=P)
        assert (reply.status_code, reply.json()) == (403, denied), token
        reply = call(kubekms, "GET", "transit/backup/t-none", token=token, namespace=P)
        assert (reply.status_code, reply.json()) == (403, denied), token  # nothing about existence
    for token in (OTHER, OPERATOR, VIEWER):
        for body in ({"backup": backup}, {"backup": backup, "force": True}, {"backup": "!!"}):
            reply = call(kubekms, "POST", "transit/restore/t-a", body, token=token, namespace=P)
            assert (reply.status_code, reply.json()) == (403, denied), (token, body)
    # OTHER may restore what it holds into its own project, not into P.
    ok(call(kubekms, "POST", "transit/restore", {"backup": backup}, token=OTHER, namespace="elsewhere"), 204)
    assert call(kubekms, "GET", "transit/keys/t-a", token=OTHER, namespace="elsewhere").status_code == 200


def test_a_derived_ed25519_key_moves_both_ways_and_signs_alike(openbao: OpenBao, kubekms: KubeKms) -> None:
    """Unlike BYOK import (which gives OpenBao's legacy KDF), a backup carries `kdf`
    hkdf_sha256: a derived ed25519 key restored on either side signs each context exactly as it
    did before (ed25519 is deterministic), and the context's public key is the same."""
    context = base64.b64encode(b"tenant-7").decode()
    for source, target in ((openbao, kubekms), (kubekms, openbao)):
        name = f"bk-derived-{source.name}"
        body = {"type": "ed25519", "derived": True, "exportable": True, "allow_plaintext_backup": True}
        ok(call(source, "POST", f"transit/keys/{name}", body))
        ok(call(source, "POST", f"transit/keys/{name}/rotate", {}))
        signed = {"input": HELLO, "context": context}
        before = ok(call(source, "POST", f"transit/sign/{name}", signed))["data"]
        backup = ok(call(source, "GET", f"transit/backup/{name}"))["data"]["backup"]
        ok(call(target, "POST", f"transit/restore/{name}", {"backup": backup}), 204)
        after = ok(call(target, "POST", f"transit/sign/{name}", signed))["data"]
        assert after["signature"] == before["signature"], (source.name, target.name)
        assert after["public_key"] == before["public_key"]
        verified = {**signed, "signature": before["signature"]}
        assert ok(call(target, "POST", f"transit/verify/{name}", verified))["data"]["valid"] is True
        wrong = {**verified, "context": base64.b64encode(b"tenant-8").decode()}
        assert ok(call(target, "POST", f"transit/verify/{name}", wrong))["data"]["valid"] is False
