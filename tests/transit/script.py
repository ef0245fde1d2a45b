"""The differential script: every request sent to OpenBao and to KubeKMS (tests/transit).

Each step is data (kms differential.Step). Values random by nature are remembered per server
(`save`) and sent back to the same server later (`$name`), so ciphertexts, signatures and HMACs
are checked by round trip: decrypting gives the plaintext, verifying gives `valid: true`.
"""

from __future__ import annotations

from typing import Any, Final

from differential import SHAPE, Step

HELLO: Final = "aGVsbG8="  # "hello"
HI: Final = "aGk="  # "hi"
KEY_READ: Final = {"keys": SHAPE}  # per-version creation times and public keys: shape only
# rsa-* keys made through Transit both encrypt and sign, as OpenBao's (README, "Key types").
RSA_READ: Final = KEY_READ
FORTY_FOUR_A: Final = "A" * 44  # 33 bytes: nonce + tag + 5, authenticates nothing

# name -> create body, one key of each type both servers support
KEYS: Final[dict[str, dict[str, Any]]] = {
    "k-aes": {},
    "k-aes128": {"type": "aes128-gcm96"},
    "k-p256": {"type": "ecdsa-p256"},
    "k-p384": {"type": "ecdsa-p384"},
    "k-p521": {"type": "ecdsa-p521"},
    "k-ed": {"type": "ed25519"},
    "k-rsa": {"type": "rsa-4096"},
    "k-hmac": {"type": "hmac", "key_size": 32},
}


def S(method: str, path: str, body: Any = None, **kw: Any) -> Step:
    return Step(method, path, body, **kw)


def system_steps() -> list[Step]:
    return [
        S("GET", "sys/health", token=None, note="public"),
        S("GET", "sys/seal-status", token=None, loose={"commit_date": SHAPE, "storage_type": SHAPE}),
        S(
            "GET",
            "sys/mounts",
            select="data.transit/",
            loose={k: SHAPE for k in ("accessor", "uuid", "description", "running_plugin_version")},
        ),
        S("GET", "sys/mounts", token=None, note="no token"),
        S(
            "GET",
            "auth/token/lookup-self",
            select="data",
            loose={
                k: SHAPE
                for k in (
                    "accessor",
                    "creation_time",
                    "display_name",
                    "entity_id",
                    "id",
                    "issue_time",
                    "path",
                    "policies",
                    "meta",
                )
            },
        ),
        S("GET", "auth/token/lookup-self", token=None, note="no token"),
        S("GET", "auth/token/lookup-self", token="not-a-token", note="unknown token"),
        S(
            "GET",
            "auth/token/lookup-self",
            token=None,
            headers={"Authorization": "Bearer $root"},
            select="data.type",
        ),
    ]


def random_and_hash_steps() -> list[Step]:
    return [
        S("POST", "transit/random", {}, note="32 bytes"),
        S("POST", "transit/random/16"),
        S("PUT", "transit/random/16", note="PUT is a write too"),
        S("POST", "transit/random/8", {"format": "hex"}),
        S("POST", "transit/random", {"bytes": 8, "format": "hex"}),
        S("POST", "transit/random/platform/8"),
        S("POST", "transit/random/0"),
        S("POST", "transit/random/abc"),
        S("POST", "transit/random/16/hex", note="the second segment is the count"),
        S("POST", "transit/random/all/8/x"),
        S("POST", "transit/random/hex"),
        S("POST", "transit/random/2000000"),
        S("POST", "transit/random", {"bytes": -1}),
        S("POST", "transit/random", {"format": "bin"}),
        S("GET", "transit/random"),
        S("POST", "transit/random", {}, token=None),
        S("POST", "transit/hash", {"input": HELLO}),
        S("POST", "transit/hash/sha2-512", {"input": HELLO, "format": "base64"}),
        S("POST", "transit/hash/sha2-224", {"input": HELLO}),
        S("POST", "transit/hash/sha3-256", {"input": HELLO}),
        S("POST", "transit/hash", {"input": HELLO, "algorithm": "sha2-384"}),
        S("POST", "transit/hash/md5", {"input": HELLO}),
        S("POST", "transit/hash/sha1", {"input": HELLO}),
        S("POST", "transit/hash", {}),
        S("POST", "transit/hash", {"input": "!!"}),
        S("POST", "transit/hash", {"input": HELLO, "format": "bin"}),
    ]


def key_steps() -> list[Step]:
    def loose(name: str) -> dict[str, Any]:
        return RSA_READ if name == "k-rsa" else KEY_READ

    steps = [S("POST", f"transit/keys/{name}", body, loose=loose(name)) for name, body in KEYS.items()]
    steps += [S("GET", f"transit/keys/{name}", loose=loose(name)) for name in KEYS]
    steps += [
        S(
            "POST",
            "transit/keys/k-aes",
            {"type": "ecdsa-p256"},
            loose=KEY_READ,
            note="exists: answered as is",
        ),
        S("POST", "transit/keys/k-null", b"null", loose=KEY_READ, note="what `bao write -f` sends"),
        S("POST", "transit/keys/k-bad", {"type": "nope"}),
        S("POST", "transit/keys/k-bad", {"type": 5}),
        S("GET", "transit/keys/k-missing"),
        S("POST", "transit/keys/k-x", {}, token=None),
        S("GET", "transit/keys/k-aes", token="not-a-token"),
        S("GET", "transit/keys/k-aes", token=None, headers={"Authorization": "Bearer $root"}, loose=KEY_READ),
        S("POST", "transit/keys/k-aes/", {}, note="a write to a path ending in /"),
        S("GET", "transit/keys/k-aes/"),
    ]
    return steps


def list_steps() -> list[Step]:
    return [
        S("LIST", "transit/keys"),
        S("GET", "transit/keys?list=true"),
        S("LIST", "transit/keys/"),
        S("GET", "transit/keys/?list=true"),
        S("GET", "transit/keys"),
        S("POST", "transit/keys", {}),
        S("LIST", "transit/keys", token=None),
    ]


def encrypt_steps() -> list[Step]:
    return [
        S("POST", "transit/encrypt/k-aes", {"plaintext": HELLO}, save={"ct": "data.ciphertext"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$ct"}, note="round trip"),
        S("POST", "transit/encrypt/k-aes128", {"plaintext": HELLO}, save={"ct128": "data.ciphertext"}),
        S("POST", "transit/decrypt/k-aes128", {"ciphertext": "$ct128"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$ct128"}, note="another key's ciphertext"),
        S("POST", "transit/encrypt/k-aes", {"plaintext": ""}, save={"ct0": "data.ciphertext"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$ct0"}),
        S("PUT", "transit/encrypt/k-aes", {"plaintext": HI}, save={"cthi": "data.ciphertext"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$cthi"}),
        S("POST", "transit/encrypt/k-aes", {"plaintext": "not base64!"}),
        S("POST", "transit/encrypt/k-aes", {"plaintext": "aGVsbG8"}, note="missing padding"),
        S("POST", "transit/encrypt/k-aes", {"plaintext": 5}),
        *(
            S("POST", "transit/encrypt/k-aes", {"plaintext": bad}, note="Go's base64 offsets")
            for bad in ("aGVsbG8=x", "aG=", "a", "aGVsbG8==", "====", "aGVs bG8=", "aGVsbG8=\n", "aGV\nsbG8=")
        ),
        S("POST", "transit/encrypt/k-aes", {"plaintext": "aGVs\nbG8="}, save={"ctnl": "data.ciphertext"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "$ctnl"}, note="Go skips newlines in base64"),
        S("POST", "transit/encrypt/k-aes", {"plaintext": True}),

        S("POST", "transit/encrypt/k-aes", {}),
        S("POST", "transit/encrypt/k-aes", [1]),
        S("POST", "transit/encrypt/k-aes", b'{"plaintext": "aGk="', errors=False, note="truncated JSON"),
        S("POST", "transit/encrypt/k-p256", {"plaintext": HELLO}),
        S("POST", "transit/encrypt/k-hmac", {"plaintext": HELLO}),
        S("POST", "transit/encrypt/k-upsert", {"plaintext": HELLO}, save={"ctup": "data.ciphertext"}),
        S("GET", "transit/keys/k-upsert", loose=KEY_READ, note="created by encrypt"),
        S("POST", "transit/decrypt/k-upsert", {"ciphertext": "$ctup"}),
        S("POST", "transit/encrypt/k-upsert128", {"plaintext": HELLO, "type": "aes128-gcm96"}),
        S("GET", "transit/keys/k-upsert128", loose=KEY_READ),
        S(
            "POST",
            "transit/encrypt/k-aes",
            {"batch_input": [{"plaintext": HELLO, "reference": "a"}, {"plaintext": HI, "reference": "b"}]},
            save={"b0": "data.batch_results.0.ciphertext", "b1": "data.batch_results.1.ciphertext"},
        ),
        S(
            "POST",
            "transit/encrypt/k-aes",
            {"batch_input": [{"plaintext": HELLO}, {"plaintext": "!!"}, {"plaintext": ""}]},
            note="one bad item: 400, the others encrypted",
        ),
        S(
            "POST",
            "transit/encrypt/k-aes",
            {
                "batch_input": [
                    {"plaintext": HELLO, "reference": "r1"},
                    {"plaintext": HI, "key_version": 99, "reference": "r2"},
                    {"plaintext": HELLO, "key_version": 1, "reference": "r3"},
                ]
            },
            note="an item above the latest version fails alone, in its place",
        ),
        S("POST", "transit/encrypt/k-aes", {"batch_input": []}),
        S("POST", "transit/encrypt/k-aes", {"plaintext": HELLO, "batch_input": [{"plaintext": HI}]}),
        S("GET", "transit/encrypt/k-aes"),
        S("DELETE", "transit/encrypt/k-aes"),
        S("POST", "transit/encrypt/k-aes", {"plaintext": HELLO}, token=None),
        S("POST", "transit/encrypt/k-aes", {"plaintext": HELLO}, token="not-a-token"),
    ]


def decrypt_steps() -> list[Step]:
    return [
        S(
            "POST",
            "transit/decrypt/k-aes",
            {
                "batch_input": [
                    {"ciphertext": "$b0", "reference": "a"},
                    {"ciphertext": "$b1", "reference": "b"},
                ]
            },
        ),
        S(
            "POST",
            "transit/decrypt/k-aes",
            {
                "batch_input": [
                    {"ciphertext": "$ct"},
                    {"ciphertext": "garbage"},
                    {"ciphertext": f"vault:v1:{FORTY_FOUR_A}"},
                ]
            },
            note="one good, two bad",
        ),
        S("POST", "transit/decrypt/k-aes", {"batch_input": [{"ciphertext": "garbage"}]}),
        S("POST", "transit/decrypt/k-aes", {}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "garbage"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "vault:AAAA"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "vault:v1:!!!"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "vault:v1:AAAA"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": f"vault:v1:{FORTY_FOUR_A}"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": f"vault:v2:{FORTY_FOUR_A}"}),
        S("POST", "transit/decrypt/k-aes", {"ciphertext": "vault:vx:AAAA"}),
        S("POST", "transit/decrypt/k-missing", {"ciphertext": "$ct"}),
        S("POST", "transit/decrypt/k-p256", {"ciphertext": "$ct"}),
        S("POST", "transit/decrypt/k-aes", {"batch_input": []}),
    ]


def hmac_steps() -> list[Step]:
    return [
        S("POST", "transit/hmac/k-hmac", {"input": HELLO}, save={"mac": "data.hmac"}),
        S("POST", "transit/verify/k-hmac", {"input": HELLO, "hmac": "$mac"}, note="round trip"),
        S("POST", "transit/verify/k-hmac", {"input": HI, "hmac": "$mac"}),
        S("POST", "transit/hmac/k-hmac/sha2-256", {"input": HELLO}, save={"mac2": "data.hmac"}),
        S("POST", "transit/verify/k-hmac/sha2-256", {"input": HELLO, "hmac": "$mac2"}),
        S("POST", "transit/hmac/k-hmac", {"input": HELLO, "algorithm": "sha2-256"}),
        S("POST", "transit/hmac/k-hmac/md5", {"input": HELLO}),
        S("POST", "transit/hmac/k-hmac", {}),
        S("POST", "transit/hmac/k-hmac", {"input": "!!"}),
        S("POST", "transit/hmac/k-missing", {"input": HELLO}),
        S("POST", "transit/verify/k-hmac", {"input": HELLO, "hmac": "garbage"}),
        S("POST", "transit/verify/k-hmac", {"input": HELLO, "hmac": "vault:v1:!!"}),
        S("POST", "transit/verify/k-hmac", {"input": HELLO}),
        S("POST", "transit/verify/k-hmac", {"input": HELLO, "hmac": "$mac", "signature": "$mac"}),
        S(
            "POST",
            "transit/hmac/k-hmac",
            {"batch_input": [{"input": HELLO, "reference": "x"}, {"input": "!!"}, {"input": ""}]},
            note="one bad item: still 200",
        ),
        S(
            "POST",
            "transit/verify/k-hmac",
            {
                "batch_input": [
                    {"input": HELLO, "hmac": "$mac"},
                    {"input": HI, "hmac": "$mac"},
                    {"input": HI, "hmac": "x"},
                ]
            },
            note="a false `valid` is omitted",
        ),
    ]


def sign_steps() -> list[Step]:
    steps = [
        S("POST", "transit/sign/k-p256", {"input": HELLO}, save={"sig": "data.signature"}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "$sig"}, note="round trip"),
        S("POST", "transit/verify/k-p256", {"input": HI, "signature": "$sig"}),
        S("POST", "transit/sign/k-p256/sha2-512", {"input": HELLO}, save={"sig512": "data.signature"}),
        S("POST", "transit/verify/k-p256/sha2-512", {"input": HELLO, "signature": "$sig512"}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "$sig512"}, note="other hash"),
        S(
            "POST",
            "transit/sign/k-p256",
            {"input": HELLO, "hash_algorithm": "sha2-384"},
            save={"s384": "data.signature"},
        ),
        S(
            "POST",
            "transit/verify/k-p256",
            {"input": HELLO, "signature": "$s384", "hash_algorithm": "sha2-384"},
        ),
        S("POST", "transit/sign/k-p256/md5", {"input": HELLO}),
        S("POST", "transit/sign/k-aes", {"input": HELLO}),
        S("POST", "transit/sign/k-hmac", {"input": HELLO}),
        S("POST", "transit/sign/k-p256", {}, note="signs the empty input"),
        S("POST", "transit/sign/k-p256", {"input": "!!"}),
        S("POST", "transit/sign/k-missing", {"input": HELLO}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "garbage"}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "vault:v1:!!"}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "vault:v1:AAAA"}),
        S("POST", "transit/verify/k-p256", {"input": HELLO, "signature": "vault:v2:AAAA"}),
        S("POST", "transit/verify/k-aes", {"input": HELLO, "signature": "vault:v1:AAAA"}),
        S("POST", "transit/verify/k-missing", {"input": HELLO, "signature": "vault:v1:AAAA"}),
        S(
            "POST",
            "transit/sign/k-p256",
            {"batch_input": [{"input": HELLO, "reference": "r"}, {"input": "!!"}]},
            save={"bsig": "data.batch_results.0.signature"},
        ),
        S(
            "POST",
            "transit/verify/k-p256",
            {
                "batch_input": [
                    {"input": HELLO, "signature": "$bsig"},
                    {"input": HI, "signature": "$bsig"},
                    {"input": HI, "signature": "x"},
                ]
            },
        ),
    ]
    for name in ("k-p384", "k-p521", "k-ed"):
        steps += [
            S("POST", f"transit/sign/{name}", {"input": HELLO}, save={f"sig-{name}": "data.signature"}),
            S("POST", f"transit/verify/{name}", {"input": HELLO, "signature": f"$sig-{name}"}),
            S("POST", f"transit/verify/{name}", {"input": HI, "signature": f"$sig-{name}"}),
        ]
    steps += [
        S("POST", "transit/sign/k-ed/sha2-512", {"input": HELLO}, note="ed25519 ignores the hash"),
        S("POST", "transit/sign/k-rsa", {"input": HELLO}, save={"rsapss": "data.signature"}),
        S("POST", "transit/verify/k-rsa", {"input": HELLO, "signature": "$rsapss"}),
        S("POST", "transit/verify/k-rsa", {"input": HI, "signature": "$rsapss"}),
        S(
            "POST",
            "transit/sign/k-rsa/sha2-512",
            {"input": HELLO, "signature_algorithm": "pkcs1v15"},
            save={"rsapkcs": "data.signature"},
        ),
        S(
            "POST",
            "transit/verify/k-rsa/sha2-512",
            {"input": HELLO, "signature": "$rsapkcs", "signature_algorithm": "pkcs1v15"},
        ),
    ]
    return steps


def routing_steps() -> list[Step]:
    return [
        S("GET", "transit/nothing"),
        S("GET", "sys/nothing"),
        S("GET", "nothing/x"),
        S("GET", "nothing/x", token=None),
        S("POST", "transit/nothing", {}, token="not-a-token"),
        S("DELETE", "transit/hash"),
    ]


def script() -> list[Step]:
    return [
        *system_steps(),
        *random_and_hash_steps(),
        *key_steps(),
        *list_steps(),
        *encrypt_steps(),
        *decrypt_steps(),
        *hmac_steps(),
        *sign_steps(),
        *routing_steps(),
    ]
