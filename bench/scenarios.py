"""The benchmarked operations: which key each needs, the request body, and the target it is held to.

A scenario is prepared once per server: its key is created, one probe request checks the success
path (a verify must say valid) and warms the API's caches, and the probe's reply size is what the
baseline server mimics. Security property: bodies hold random test data only, never key material.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processes import Identity, Server, call, create_key

Body = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Scenario:
    """One operation under load. `target` is (the bare endpoint it is compared with, minimum ratio)."""

    name: str
    usage: str
    algorithm: str
    op: str
    body: Callable[[Server, Identity, str], Body]
    expect: tuple[str, Any] | None  # a reply field and value proving the success path
    target: tuple[str, float]


def _post(server: Server, identity: Identity, key_id: str, op: str, body: Body) -> Body:
    status, reply, _ = call(server, "POST", f"/api/v1/kms/keys/{key_id}/{op}", identity.operator, body)
    if status != 200:
        raise RuntimeError(f"{op} on {key_id}: {status} {reply}")
    result: Body = reply
    return result


def _plain(size: int) -> Callable[[Server, Identity, str], Body]:
    return lambda s, i, k: {"plaintext": b64(os.urandom(size))}


def _cipher(size: int) -> Callable[[Server, Identity, str], Body]:
    def build(server: Server, identity: Identity, key_id: str) -> Body:
        sealed = _post(server, identity, key_id, "encrypt", {"plaintext": b64(os.urandom(size))})
        return {"ciphertext": sealed["ciphertext"]}

    return build


DATA = b64(os.urandom(64))


def _mac(server: Server, identity: Identity, key_id: str) -> Body:
    return {"data": DATA, "mac": _post(server, identity, key_id, "generate-mac", {"data": DATA})["mac"]}


def _sign_body(algorithm: str) -> Callable[[Server, Identity, str], Body]:
    return lambda s, i, k: {"signingAlgorithm": algorithm, "data": DATA}


def _verify_body(algorithm: str) -> Callable[[Server, Identity, str], Body]:
    def build(server: Server, identity: Identity, key_id: str) -> Body:
        signed = _post(server, identity, key_id, "sign", {"signingAlgorithm": algorithm, "data": DATA})
        return {"signingAlgorithm": algorithm, "data": DATA, "signature": signed["signature"]}

    return build


ENC, SIG, MAC = "encrypt-decrypt", "sign-verify", "generate-verify-mac"
AES, P256, ED, RSA, HMAC = "aes-256-gcm", "ECC_NIST_P256", "ECC_NIST_ED25519", "RSA_4096", "HMAC_SHA_256"
# Against the truly bare endpoint (bare_server.py): without crypto for the symmetric operations,
# with the same `cryptography` call for signing and verifying ("bare-crypto").
BARE60, SAME80 = ("bare", 0.6), ("bare-crypto", 0.8)
# KubeKMS / OpenBao Transit req/s, same run and core, on every operation: with OpenBao's file
# audit device (KubeKMS always audits) and without one.
OPENBAO_AUDIT_MIN, OPENBAO_MIN = 3.0, 1.5

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("encrypt-64B", ENC, AES, "encrypt", _plain(64), None, BARE60),
    Scenario("encrypt-4KiB", ENC, AES, "encrypt", _plain(4096), None, BARE60),
    Scenario("decrypt-64B", ENC, AES, "decrypt", _cipher(64), None, BARE60),
    Scenario("decrypt-4KiB", ENC, AES, "decrypt", _cipher(4096), None, BARE60),
    Scenario("hmac-generate", MAC, HMAC, "generate-mac", lambda s, i, k: {"data": DATA}, None, BARE60),
    Scenario("hmac-verify", MAC, HMAC, "verify-mac", _mac, ("macValid", True), BARE60),
    Scenario("ecdsa-p256-sign", SIG, P256, "sign", _sign_body("ECDSA_SHA_256"), None, SAME80),
    Scenario(
        "ecdsa-p256-verify",
        SIG,
        P256,
        "verify",
        _verify_body("ECDSA_SHA_256"),
        ("signatureValid", True),
        SAME80,
    ),
    Scenario("ed25519-sign", SIG, ED, "sign", _sign_body("ED25519_SHA_512"), None, SAME80),
    Scenario(
        "ed25519-verify", SIG, ED, "verify", _verify_body("ED25519_SHA_512"), ("signatureValid", True), SAME80
    ),
    Scenario("rsa4096-sign", SIG, RSA, "sign", _sign_body("RSASSA_PSS_SHA_256"), None, SAME80),
)
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class Prepared:
    """A scenario ready for wrk: the URL, the exact body bytes, and the reply size to mimic."""

    scenario: Scenario
    key_id: str
    path: str
    body: bytes
    reply_bytes: int


def prepare(server: Server, identity: Identity, scenario: Scenario, keys: dict[str, str]) -> Prepared:
    """Create (or reuse, per algorithm) the scenario's key and probe its request once."""
    key_id = keys.get(scenario.algorithm)
    if key_id is None:
        key_id = create_key(
            server,
            identity,
            f"bench-{scenario.algorithm.lower()}"[:32].replace("_", "-"),
            scenario.usage,
            scenario.algorithm,
        )
        keys[scenario.algorithm] = key_id
    body = json.dumps(scenario.body(server, identity, key_id), separators=(",", ":")).encode()
    path = f"/api/v1/kms/keys/{key_id}/{scenario.op}"
    status, reply, raw = call(server, "POST", path, identity.operator, json.loads(body))
    if status != 200:
        raise RuntimeError(f"probe {scenario.name}: {status} {reply}")
    if scenario.expect is not None and reply.get(scenario.expect[0]) != scenario.expect[1]:
        raise RuntimeError(f"probe {scenario.name}: expected {scenario.expect}, got {reply}")
    return Prepared(scenario, key_id, path, body, len(raw))
