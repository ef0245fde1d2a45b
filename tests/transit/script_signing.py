"""Differential steps of Transit's signing options and HMACs (tests/transit/script.py's
conventions): every signing hash, `prehashed`, `hash_algorithm=none` and its rule,
`signature_algorithm`, `salt_length` (sign and verify crossed), `marshaling_algorithm` asn1/jws,
per key type (ECDSA P-256/384/521, RSA, ed25519), and `hmac` with every hash and key type.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

from differential import Step
from script import HELLO, HI, KEY_READ, S

JWS: Final = r"vault:v[1-9][0-9]*:[A-Za-z0-9_-]+"
JWS_READ: Final = {"signature": JWS}
DIGEST: Final = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
SHORT: Final = base64.b64encode(b"short").decode()
HASHES: Final = (
    "sha1",
    "sha2-224",
    "sha2-256",
    "sha2-384",
    "sha2-512",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
)
KEYS: Final[dict[str, str]] = {
    "sg-p256": "ecdsa-p256",
    "sg-p384": "ecdsa-p384",
    "sg-p521": "ecdsa-p521",
    "sg-rsa": "rsa-2048",
    "sg-ed": "ed25519",
    "sg-aes": "aes256-gcm96",
    "sg-chacha": "chacha20-poly1305",
}


def _sign_verify(
    key: str,
    tag: str,
    sign: dict[str, Any],
    verify: dict[str, Any] | None = None,
    *,
    data: str = HELLO,
    wrong: str = HI,
    jws: bool = False,
) -> list[Step]:
    """Sign, verify the signature (valid), verify it over other input (invalid)."""
    loose = JWS_READ if jws else {}
    check = sign if verify is None else verify
    return [
        S("POST", f"transit/sign/{key}", {"input": data, **sign}, save={tag: "data.signature"}, loose=loose),
        S("POST", f"transit/verify/{key}", {"input": data, "signature": f"${tag}", **check}),
        S("POST", f"transit/verify/{key}", {"input": wrong, "signature": f"${tag}", **check}),
    ]


def key_steps() -> list[Step]:
    return [S("POST", f"transit/keys/{name}", {"type": kind}, loose=KEY_READ) for name, kind in KEYS.items()]


def hash_steps() -> list[Step]:
    steps: list[Step] = []
    for key in ("sg-p256", "sg-p384", "sg-p521", "sg-rsa", "sg-ed"):
        for name in HASHES:
            steps += _sign_verify(key, f"{key}-{name}", {"hash_algorithm": name})
        steps += [
            S(
                "POST",
                f"transit/sign/{key}/sha3-256",
                {"input": HELLO},
                save={f"{key}-path": "data.signature"},
            ),
            S("POST", f"transit/verify/{key}/sha3-256", {"input": HELLO, "signature": f"${key}-path"}),
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": f"${key}-path", "algorithm": "sha3-256"},
            ),
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": f"${key}-sha1", "hash_algorithm": "sha2-256"},
                note="another hash",
            ),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "hash_algorithm": "md5"}),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "hash_algorithm": "SHA2-256"}),
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": f"${key}-path", "hash_algorithm": "md5"},
            ),
            S(
                "POST",
                f"transit/sign/{key}/sha2-384",
                {"input": HELLO, "hash_algorithm": "md5"},
                note="path wins",
            ),
        ]
    steps += [
        S("POST", "transit/sign/sg-missing", {"input": HELLO, "hash_algorithm": "md5"}),
        S("POST", "transit/sign/sg-aes", {"input": HELLO, "hash_algorithm": "none"}),
        S("POST", "transit/verify/sg-aes", {"input": HELLO, "signature": "vault:v1:AAAA"}),
    ]
    return steps


def prehash_steps() -> list[Step]:
    steps: list[Step] = []
    for key in ("sg-p256", "sg-p384", "sg-p521", "sg-rsa", "sg-ed"):
        steps += _sign_verify(key, f"{key}-pre", {"prehashed": True}, data=DIGEST, wrong=SHORT)
        steps += [
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": f"${key}-pre"},
                note="not prehashed",
            ),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "hash_algorithm": "none"}),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "hash_algorithm": "none", "prehashed": True}),
            S(
                "POST",
                f"transit/sign/{key}",
                {"input": HELLO, "hash_algorithm": "none", "prehashed": True, "signature_algorithm": "pss"},
            ),
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": f"${key}-pre", "hash_algorithm": "none"},
            ),
        ]
        none = {"hash_algorithm": "none", "prehashed": True, "signature_algorithm": "pkcs1v15"}
        steps += _sign_verify(key, f"{key}-none", none, data=SHORT, wrong=HELLO)
    for key in ("sg-p256", "sg-p384", "sg-p521"):  # ECDSA takes a digest of any length
        steps += _sign_verify(key, f"{key}-short", {"prehashed": True}, data=SHORT, wrong=DIGEST)
        steps += _sign_verify(
            key,
            f"{key}-long",
            {"prehashed": True, "hash_algorithm": "sha2-512"},
            data=base64.b64encode(bytes(range(64))).decode(),
            wrong=DIGEST,
        )
    steps += _sign_verify(
        "sg-rsa",
        "rsa-pre-p1",
        {"prehashed": True, "signature_algorithm": "pkcs1v15"},
        data=DIGEST,
        wrong=SHORT,
    )
    steps += _sign_verify(
        "sg-rsa",
        "rsa-pre-384",
        {"prehashed": True, "hash_algorithm": "sha2-384"},
        data=base64.b64encode(hashlib.sha384(b"x").digest()).decode(),
        wrong=DIGEST,
    )
    return steps


def salt_steps() -> list[Step]:
    steps: list[Step] = []
    for salt in ("auto", "hash", "7", 7, 0, -1, "AUTO", "+7", 222):
        steps.append(
            S(
                "POST",
                "transit/sign/sg-rsa",
                {"input": HELLO, "salt_length": salt},
                save={f"salt-{salt}": "data.signature"},
            )
        )
        for check in (None, "auto", "hash", "7", "8", 0):
            extra = {} if check is None else {"salt_length": check}
            steps.append(
                S(
                    "POST",
                    "transit/verify/sg-rsa",
                    {"input": HELLO, "signature": f"$salt-{salt}", **extra},
                    note=f"salt {salt}/{check}",
                )
            )
    steps += _sign_verify("sg-rsa", "salt-p1", {"salt_length": "hash", "signature_algorithm": "pkcs1v15"})
    steps += _sign_verify(
        "sg-rsa",
        "salt-sha512",
        {"salt_length": "hash", "hash_algorithm": "sha2-512"},
        {"salt_length": "auto", "hash_algorithm": "sha2-512"},
    )
    for bad in ("x", "", -2, "-2", 7.5, " 7", "0x10"):
        steps.append(S("POST", "transit/sign/sg-rsa", {"input": HELLO, "salt_length": bad}))
        steps.append(S("POST", "transit/sign/sg-missing", {"input": HELLO, "salt_length": bad}))
    for key in ("sg-p256", "sg-ed"):
        steps += _sign_verify(key, f"{key}-salt", {"salt_length": 7})
        steps.append(S("POST", f"transit/sign/{key}", {"input": HELLO, "salt_length": "x"}))
        steps.append(
            S(
                "POST",
                f"transit/sign/{key}",
                {"input": HELLO, "signature_algorithm": "foo"},
                loose={"signature": r"vault:v1:.+"},
            )
        )
    return steps


def marshaling_steps() -> list[Step]:
    steps: list[Step] = []
    jws = {"marshaling_algorithm": "jws"}
    for key in ("sg-p256", "sg-p384", "sg-p521", "sg-rsa", "sg-ed"):
        steps += _sign_verify(key, f"{key}-jws", jws, jws=True)
        steps += _sign_verify(key, f"{key}-jws512", {**jws, "hash_algorithm": "sha2-512"}, jws=True)
        steps += [
            S("POST", f"transit/verify/{key}", {"input": HELLO, "signature": "vault:v1:AAAA", **jws}),
            S("POST", f"transit/verify/{key}", {"input": HELLO, "signature": "vault:v1:AA+/", **jws}),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "marshaling_algorithm": "foo"}),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "marshaling_algorithm": ""}),
            S("POST", f"transit/sign/{key}", {"input": HELLO, "marshaling_algorithm": "JWS"}),
            S(
                "POST",
                f"transit/verify/{key}",
                {"input": HELLO, "signature": "vault:v1:AAAA", "marshaling_algorithm": "foo"},
            ),
        ]
    for key in ("sg-p256", "sg-rsa"):
        # an unpadded JWS of 64 or 256 bytes is never standard base64 (its length is off). Not
        # P-384/P-521: 96 and 132 bytes need no padding, so whether the URL alphabet's `-`/`_`
        # occur (and which error each server gives) depends on the random signature.
        steps.append(S("POST", f"transit/verify/{key}", {"input": HELLO, "signature": f"${key}-jws"}))
    # an ed25519 signature in standard base64 ends in "==": never JWS
    steps.append(S("POST", "transit/verify/sg-ed", {"input": HELLO, "signature": "$sg-ed-sha1", **jws}))
    steps += [
        S(
            "POST",
            "transit/sign/sg-missing",
            {"input": HELLO, "marshaling_algorithm": "foo", "salt_length": "x"},
        ),
        S(
            "POST",
            "transit/sign/sg-p256",
            {**jws, "batch_input": [{"input": HELLO}, {"input": "!"}]},
            loose=JWS_READ,
            save={"batch-jws": "data.batch_results.0.signature"},
        ),
        S(
            "POST",
            "transit/verify/sg-p256",
            {
                **jws,
                "batch_input": [
                    {"input": HELLO, "signature": "$batch-jws"},
                    {"input": HI, "signature": "$batch-jws"},
                    {"input": HELLO, "signature": "vault:v1:AAAA"},
                ],
            },
        ),
    ]
    return steps


def hmac_steps() -> list[Step]:
    """`hmac` with every key type (each version's own HMAC key) and every hash."""
    steps = [S("POST", "transit/keys/sg-hm", {"type": "hmac", "key_size": 32}, loose=KEY_READ)]
    for key in ("sg-hm", "sg-aes", "sg-chacha", "sg-p256", "sg-rsa", "sg-ed"):
        for name in HASHES:
            tag = f"{key}-mac-{name}"
            steps += [
                S(
                    "POST",
                    f"transit/hmac/{key}",
                    {"input": HELLO, "algorithm": name},
                    save={tag: "data.hmac"},
                ),
                S("POST", f"transit/verify/{key}", {"input": HELLO, "hmac": f"${tag}", "algorithm": name}),
                S("POST", f"transit/verify/{key}/{name}", {"input": HI, "hmac": f"${tag}"}),
                S(
                    "POST",
                    f"transit/verify/{key}",
                    {"input": HELLO, "hmac": f"${tag}", "hash_algorithm": name},
                ),
            ]
        steps += [
            S(
                "POST",
                f"transit/hmac/{key}/sha3-256",
                {"input": HELLO},
                save={f"{key}-mac-path": "data.hmac"},
            ),
            S("POST", f"transit/verify/{key}/sha3-256", {"input": HELLO, "hmac": f"${key}-mac-path"}),
            S("POST", f"transit/verify/{key}", {"input": HELLO, "hmac": f"${key}-mac-path"}, note="sha2-256"),
            S("POST", f"transit/hmac/{key}/sha3-256", {"input": HELLO, "algorithm": "md5"}, note="path wins"),
            S("POST", f"transit/hmac/{key}", {"input": HELLO, "algorithm": "md5"}),
            S("POST", f"transit/hmac/{key}", {"input": HELLO, "algorithm": ""}, note="default"),
            S("POST", f"transit/hmac/{key}/md5", {"input": HELLO}),
            S("POST", f"transit/verify/{key}/md5", {"input": HELLO, "hmac": f"${key}-mac-path"}),
            S(
                "POST",
                f"transit/hmac/{key}",
                {"batch_input": [{"input": HELLO}, {"input": "!"}], "algorithm": "sha1"},
                save={f"{key}-mac-batch": "data.batch_results.0.hmac"},
            ),
            S(
                "POST",
                f"transit/verify/{key}",
                {
                    "algorithm": "sha1",
                    "batch_input": [
                        {"input": HELLO, "hmac": f"${key}-mac-batch"},
                        {"input": HI, "hmac": f"${key}-mac-batch"},
                    ],
                },
            ),
            S("GET", f"transit/export/hmac-key/{key}", note="not exportable"),
        ]
    return steps


def signing_steps() -> list[Step]:
    return [*key_steps(), *hash_steps(), *prehash_steps(), *salt_steps(), *marshaling_steps(), *hmac_steps()]
