"""Differential steps of the Transit crypto options (tests/transit/script.py's conventions):
the Transit-only key types (chacha20-poly1305, rsa-2048, rsa-3072: RSA keys both encrypt and
sign, as OpenBao's do) and `associated_data` for the AEAD keys, single and batch.
"""

from __future__ import annotations

from typing import Any, Final

from differential import SHAPE, Step
from script import HELLO, HI, S

KEY_READ: Final = {"keys": SHAPE}  # per-version creation times and public keys: shape only
AAD: Final = "Y3R4"  # "ctx"
OTHER_AAD: Final = "b3RoZXI="  # "other"

TYPES: Final[dict[str, dict[str, Any]]] = {
    "c-chacha": {"type": "chacha20-poly1305"},
    "c-rsa2048": {"type": "rsa-2048"},
    "c-rsa3072": {"type": "rsa-3072"},
}


def type_steps() -> list[Step]:
    steps = [S("POST", f"transit/keys/{name}", body, loose=KEY_READ) for name, body in TYPES.items()]
    steps += [S("GET", f"transit/keys/{name}", loose=KEY_READ) for name in TYPES]
    steps += [
        S("POST", "transit/encrypt/c-chacha", {"plaintext": HELLO}, save={"cc": "data.ciphertext"}),
        S("POST", "transit/decrypt/c-chacha", {"ciphertext": "$cc"}, note="round trip"),
        S("POST", "transit/decrypt/c-chacha", {"ciphertext": "vault:v1:" + "A" * 44}),
        S("POST", "transit/sign/c-chacha", {"input": HELLO}),
        S("POST", "transit/encrypt/c-upchacha", {"plaintext": HELLO, "type": "chacha20-poly1305"}),
        S("GET", "transit/keys/c-upchacha", loose=KEY_READ, note="created by encrypt"),
    ]
    for name in ("c-rsa2048", "c-rsa3072"):
        steps += [
            S(
                "POST",
                f"transit/encrypt/{name}",
                {"plaintext": HELLO},
                save={f"{name}-ct": "data.ciphertext"},
            ),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-ct"}, note="RSA-OAEP round trip"),
            S("POST", f"transit/sign/{name}", {"input": HELLO}, save={f"{name}-sig": "data.signature"}),
            S("POST", f"transit/verify/{name}", {"input": HELLO, "signature": f"${name}-sig"}),
            S("POST", f"transit/verify/{name}", {"input": HI, "signature": f"${name}-sig"}),
            S(
                "POST",
                f"transit/sign/{name}",
                {"input": HELLO, "signature_algorithm": "pkcs1v15"},
                save={f"{name}-p1": "data.signature"},
            ),
            S(
                "POST",
                f"transit/verify/{name}",
                {"input": HELLO, "signature": f"${name}-p1", "signature_algorithm": "pkcs1v15"},
            ),
        ]
    steps += [
        S(
            "POST",
            "transit/encrypt/c-rsa2048",
            {"batch_input": [{"plaintext": HELLO}, {"plaintext": HI}]},
            save={"r0": "data.batch_results.0.ciphertext", "r1": "data.batch_results.1.ciphertext"},
        ),
        S(
            "POST",
            "transit/decrypt/c-rsa2048",
            {"batch_input": [{"ciphertext": "$r0"}, {"ciphertext": "$r1"}]},
        ),
        S("POST", "transit/keys/c-bad", {"type": "aes128-cmac"}),
    ]
    return steps


def associated_data_steps() -> list[Step]:
    steps: list[Step] = []
    for name, text in (("k-aes", "cipher"), ("c-chacha", "chacha20poly1305")):
        steps += [
            S(
                "POST",
                f"transit/encrypt/{name}",
                {"plaintext": HELLO, "associated_data": AAD},
                save={f"{name}-aad": "data.ciphertext"},
            ),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-aad", "associated_data": AAD}),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-aad"}, note=f"{text}: no AAD"),
            S(
                "POST",
                f"transit/decrypt/{name}",
                {"ciphertext": f"${name}-aad", "associated_data": OTHER_AAD},
                note="another AAD",
            ),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-aad", "associated_data": ""}),
            S(
                "POST",
                f"transit/encrypt/{name}",
                {
                    "batch_input": [
                        {"plaintext": HELLO, "associated_data": AAD, "reference": "a"},
                        {"plaintext": HI, "reference": "b"},
                    ]
                },
                save={
                    f"{name}-b0": "data.batch_results.0.ciphertext",
                    f"{name}-b1": "data.batch_results.1.ciphertext",
                },
            ),
            S(
                "POST",
                f"transit/decrypt/{name}",
                {
                    "batch_input": [
                        {"ciphertext": f"${name}-b0", "associated_data": AAD},
                        {"ciphertext": f"${name}-b1"},
                        {"ciphertext": f"${name}-b0", "associated_data": OTHER_AAD},
                    ]
                },
                note="per-item AAD; a wrong one fails its item",
            ),
        ]
    steps += [
        S("POST", "transit/encrypt/c-rsa2048", {"plaintext": HELLO, "associated_data": AAD}),
        S("POST", "transit/decrypt/c-rsa2048", {"ciphertext": "$c-rsa2048-ct", "associated_data": AAD}),
    ]
    return steps


CTX: Final = "dGVuYW50LTQy"  # "tenant-42"


def derivation_steps() -> list[Step]:
    steps = [
        S("POST", "transit/keys/c-derived", {"derived": True}, loose=KEY_READ),
        S("POST", "transit/keys/c-conv", {"derived": True, "convergent_encryption": True}, loose=KEY_READ),
        S(
            "POST",
            "transit/keys/c-conv-cha",
            {"type": "chacha20-poly1305", "derived": True, "convergent_encryption": True},
            loose=KEY_READ,
        ),
        S("POST", "transit/keys/c-conv-bad", {"convergent_encryption": True}),
        S("GET", "transit/keys/c-derived", loose=KEY_READ),
        S("POST", "transit/encrypt/c-derived", {"plaintext": HELLO}, note="no context"),
        S("POST", "transit/encrypt/c-derived", {"plaintext": HELLO, "context": "!!"}),
        S(
            "POST",
            "transit/encrypt/k-aes",
            {"plaintext": HELLO, "context": CTX},
            save={"ign": "data.ciphertext"},
            note="a context is ignored by a key that is not derived",
        ),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$ign"}),
        S(
            "POST",
            "transit/encrypt/c-derived",
            {"batch_input": [{"plaintext": HELLO}, {"plaintext": HI, "context": CTX}]},
        ),
        S(
            "POST",
            "transit/decrypt/c-derived",
            {"batch_input": [{"ciphertext": "$ign", "context": CTX}, {"ciphertext": "$ign"}]},
        ),
        S(
            "POST",
            "transit/encrypt/c-up-derived",
            {"plaintext": HELLO, "context": CTX},
            save={"up": "data.ciphertext"},
        ),
        S("GET", "transit/keys/c-up-derived", loose=KEY_READ, note="an upsert with a context is derived"),
        S("POST", "transit/decrypt/c-up-derived", {"ciphertext": "$up", "context": CTX}),
    ]
    for name in ("c-derived", "c-conv", "c-conv-cha"):
        steps += [
            S(
                "POST",
                f"transit/encrypt/{name}",
                {"plaintext": HELLO, "context": CTX},
                save={f"{name}-ct": "data.ciphertext"},
            ),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-ct", "context": CTX}),
            S("POST", f"transit/decrypt/{name}", {"ciphertext": f"${name}-ct"}, note="no context"),
            S(
                "POST",
                f"transit/decrypt/{name}",
                {"ciphertext": f"${name}-ct", "context": HI},
                note="other context",
            ),
            S(
                "POST",
                f"transit/encrypt/{name}",
                {"batch_input": [{"plaintext": HELLO, "context": CTX}, {"plaintext": HI, "context": "!!"}]},
            ),
        ]
    return steps


def crypto_steps() -> list[Step]:
    return [*type_steps(), *associated_data_steps(), *derivation_steps()]
