"""Cryptographic views: encrypt, decrypt, sign, verify, MAC, key agreement, public key (spec §2.7-2.18).

Security property: plaintexts, ciphertexts and secrets pass through as bytes and are only
base64-encoded into the response; nothing here logs or keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kms_api.call import Call
from kms_api.wire import b64
from kms_core.model import Key, SigningAlgorithm

Json = dict[str, Any]


async def encrypt(call: Call) -> Json:
    ciphertext = await call.service.encrypt(
        call.key_id, call.body["plaintext"], call.authz, observe=_note_key(call)
    )
    return {"ciphertext": b64(ciphertext)}


async def decrypt(call: Call) -> Json:
    plaintext = await call.service.decrypt(
        call.key_id, call.body["ciphertext"], call.authz, observe=_note_key(call)
    )
    return {"plaintext": b64(plaintext)}


async def public_key(call: Call) -> Json:
    return {"publicKey": b64(await call.service.public_key(call.key_id, call.authz))}


async def signing_algorithms(call: Call) -> Json:
    algorithms = await call.service.signing_algorithms(call.key_id, call.authz)
    return {"signingAlgorithms": [a.value for a in algorithms]}


async def sign(call: Call) -> Json:
    b = call.body
    algorithm = SigningAlgorithm(b["signingAlgorithm"])
    call.note_algorithm(algorithm.value)
    signature = await call.service.sign(call.key_id, algorithm, b["data"], b["isDigest"], call.authz)
    return {"signature": b64(signature), "keyId": call.key_id, "signingAlgorithm": algorithm.value}


async def verify(call: Call) -> Json:
    b = call.body
    algorithm = SigningAlgorithm(b["signingAlgorithm"])
    call.note_algorithm(algorithm.value)
    valid = await call.service.verify(
        call.key_id, algorithm, b["data"], b["signature"], b["isDigest"], call.authz
    )
    return {"signatureValid": valid, "keyId": call.key_id, "signingAlgorithm": algorithm.value}


def _note_key(call: Call) -> Callable[[Key], None]:
    """Records the key's algorithm for the metrics label and the response, from the record the
    operation itself read (no second lookup)."""

    def observe(key: Key) -> None:
        call.note_algorithm(key.algorithm.value)

    return observe


async def generate_mac(call: Call) -> Json:
    mac = await call.service.generate_mac(call.key_id, call.body["data"], call.authz, observe=_note_key(call))
    return {"mac": b64(mac), "keyId": call.key_id, "macAlgorithm": call.algorithm}


async def verify_mac(call: Call) -> Json:
    b = call.body
    observe = _note_key(call)
    valid = await call.service.verify_mac(call.key_id, b["data"], b["mac"], call.authz, observe=observe)
    return {"macValid": valid, "keyId": call.key_id, "macAlgorithm": call.algorithm}


async def derive_shared_secret(call: Call) -> Json:
    secret = await call.service.derive_shared_secret(call.key_id, call.body["publicKey"], call.authz)
    return {"secret": b64(secret), "keyId": call.key_id}
