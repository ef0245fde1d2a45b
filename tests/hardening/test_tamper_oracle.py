"""No decryption oracle through the HTTP API: every class of ciphertext tampering gets the same answer.

Bit flips, truncation, extension, version-trailer edits and swaps between keys and versions, on
AES keys (rotated, so v01 and v02 ciphertexts exist) and an RSA-OAEP key, all answer the identical
400 body except `reqId`. The trailer is not authenticated (SECURITY.md): an edit that leaves the
IV, ciphertext and tag intact may still decrypt, but only ever to the original plaintext.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.api import ADMIN, ApiProcess, P, b64
from hardening.rawhttp import build, send
from kms_core import ciphertext as layout

K = "/api/v1/kms/keys"
EXAMPLES = int(os.environ.get("KUBEKMS_TAMPER_EXAMPLES", "150"))
REFUSAL = {
    "statusCode": 400,
    "message": "Ciphertext cannot be decrypted with this KMS key.",
    "error": "BadRequest",
}


def _post(port: int, path: str, payload: dict) -> tuple[int, dict]:
    reply = send(port, build("POST", path, body=json.dumps(payload).encode(), token=ADMIN))
    return reply.status, reply.json()


@pytest.fixture(scope="module")
def material(live_api: ApiProcess, rsa_pem: bytes) -> dict:
    port = live_api.port
    keys = {}
    for name in ("t-aes", "t-other"):
        _, body = _post(port, K, {"projectId": P, "name": name})
        keys[name] = body["key"]["id"]
    entry = {
        "name": "t-rsa",
        "keyUsage": "encrypt-decrypt",
        "algorithm": "RSA_4096",
        "keyMaterial": b64(rsa_pem),
    }
    _, body = _post(port, f"{K}/bulk-import", {"projectId": P, "keys": [entry]})
    keys["t-rsa"] = body["keys"][0]["id"]
    plaintext = b"tamper me: " + os.urandom(16)
    samples = []  # (key id, ciphertext bytes)
    for name in ("t-aes", "t-other", "t-rsa"):
        _, body = _post(port, f"{K}/{keys[name]}/encrypt", {"plaintext": b64(plaintext)})
        samples.append((keys[name], base64.b64decode(body["ciphertext"])))
    _post(port, f"{K}/{keys['t-aes']}/rotate", {})
    _, body = _post(port, f"{K}/{keys['t-aes']}/encrypt", {"plaintext": b64(plaintext)})
    samples.append((keys["t-aes"], base64.b64decode(body["ciphertext"])))  # a v02 ciphertext
    assert samples[-1][1].endswith(b"v02") and samples[0][1].endswith(b"v01")
    return {"keys": keys, "plaintext": plaintext, "samples": samples}


def _tamper(draw: st.DrawFn, blob: bytes, others: list[bytes]) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "trailer", "version", "swap-tail", "other"]))
    if kind == "flip":
        i = draw(st.integers(0, len(blob) - 1))
        return blob[:i] + bytes([blob[i] ^ (1 << draw(st.integers(0, 7)))]) + blob[i + 1 :]
    if kind == "truncate":
        return blob[: draw(st.integers(1, len(blob) - 1))]
    if kind == "extend":
        return blob + draw(st.binary(min_size=1, max_size=64))
    if kind == "trailer":
        return blob[:-3] + draw(st.sampled_from([b"v02", b"v01", b"v00", b"v99", b"\x00\x00\x00"]))
    if kind == "version":
        raw, _ = layout.unpack(blob)
        return raw + draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big") + b"v02"
    if kind == "swap-tail":  # another ciphertext's trailer and tag on this body
        other = draw(st.sampled_from(others))
        cut = draw(st.integers(1, min(len(blob), len(other)) - 1))
        return blob[:cut] + other[cut:]
    return draw(st.sampled_from(others))  # a whole ciphertext of another key


@st.composite
def tampered(draw: st.DrawFn, samples: list[tuple[str, bytes]]) -> tuple[str, bytes, bytes]:
    key_id, blob = draw(st.sampled_from(samples))
    others = [b for k, b in samples if k != key_id]
    changed = _tamper(draw, blob, others)
    return key_id, blob, changed


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_tampering_gets_the_identical_refusal(
    live_api: ApiProcess, material: dict, data: st.DataObject
) -> None:
    key_id, original, changed = data.draw(tampered(material["samples"]))
    if changed == original:
        return
    status, body = _post(live_api.port, f"{K}/{key_id}/decrypt", {"ciphertext": b64(changed)})
    if status == 200:
        # Only an unauthenticated trailer edit may still decrypt, and only to the original plaintext.
        assert layout.unpack(changed)[0] == layout.unpack(original)[0]
        assert base64.b64decode(body["plaintext"]) == material["plaintext"]
        return
    assert status == 400, body
    assert body.pop("reqId").startswith("req-")
    assert body == REFUSAL
