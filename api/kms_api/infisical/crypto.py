"""Cryptographic handlers: encrypt, decrypt, sign, verify, MAC, key agreement, public key (spec §2.7-2.18).

Security property: plaintexts, ciphertexts and secrets pass through as bytes and are only
base64-encoded into the reply; nothing here logs or keeps them.
"""

from __future__ import annotations

from typing import Any

from kms_api.infisical.encoding import b64
from kms_api.pipeline.call import Call
from kms_core.model import SigningAlgorithm
from kms_core.outcome import Outcome

Json = dict[str, Any]


async def encrypt(call: Call) -> Outcome[bytes]:
    return await call.service.encrypt(call.caller, call.key_id, call.body["plaintext"])


def encrypt_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {"ciphertext": b64(outcome.result)}


async def decrypt(call: Call) -> Outcome[bytes]:
    return await call.service.decrypt(call.caller, call.key_id, call.body["ciphertext"])


def decrypt_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {"plaintext": b64(outcome.result)}


async def public_key(call: Call) -> Outcome[bytes]:
    return await call.service.public_key(call.caller, call.key_id)


def public_key_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {"publicKey": b64(outcome.result)}


async def signing_algorithms(call: Call) -> Outcome[tuple[SigningAlgorithm, ...]]:
    return await call.service.signing_algorithms(call.caller, call.key_id)


def signing_algorithms_reply(call: Call, outcome: Outcome[tuple[SigningAlgorithm, ...]]) -> Json:
    return {"signingAlgorithms": [a.value for a in outcome.result]}


async def sign(call: Call) -> Outcome[bytes]:
    b = call.body
    algorithm = SigningAlgorithm(b["signingAlgorithm"])
    return await call.service.sign(call.caller, call.key_id, algorithm, b["data"], b["isDigest"])


def sign_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {
        "signature": b64(outcome.result),
        "keyId": call.key_id,
        "signingAlgorithm": call.body["signingAlgorithm"],  # validated: one of the enum's values
    }


async def verify(call: Call) -> Outcome[bool]:
    b = call.body
    algorithm = SigningAlgorithm(b["signingAlgorithm"])
    return await call.service.verify(
        call.caller, call.key_id, algorithm, b["data"], b["signature"], b["isDigest"]
    )


def verify_reply(call: Call, outcome: Outcome[bool]) -> Json:
    return {
        "signatureValid": outcome.result,
        "keyId": call.key_id,
        "signingAlgorithm": call.body["signingAlgorithm"],  # validated: one of the enum's values
    }


async def generate_mac(call: Call) -> Outcome[bytes]:
    return await call.service.generate_mac(call.caller, call.key_id, call.body["data"])


def generate_mac_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    assert outcome.key is not None
    return {"mac": b64(outcome.result), "keyId": call.key_id, "macAlgorithm": outcome.key.algorithm.value}


async def verify_mac(call: Call) -> Outcome[bool]:
    b = call.body
    return await call.service.verify_mac(call.caller, call.key_id, b["data"], b["mac"])


def verify_mac_reply(call: Call, outcome: Outcome[bool]) -> Json:
    assert outcome.key is not None
    return {"macValid": outcome.result, "keyId": call.key_id, "macAlgorithm": outcome.key.algorithm.value}


async def derive_shared_secret(call: Call) -> Outcome[bytes]:
    return await call.service.derive_shared_secret(call.caller, call.key_id, call.body["publicKey"])


def derive_shared_secret_reply(call: Call, outcome: Outcome[bytes]) -> Json:
    return {"secret": b64(outcome.result), "keyId": call.key_id}
