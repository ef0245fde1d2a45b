"""The crypto ceiling: the `cryptography` library's own single-thread ops/s for each benchmarked
operation, with no HTTP, JSON, auth or store in the way.

The API's req/s for an operation can never beat this figure per worker; the ratio of the two is
how much of a request's time the cryptography itself takes. Operation names match the load
scenarios in scenarios.py. Security property: keys are generated fresh in memory and discarded.

    python bench/crypto_ceiling.py [--seconds 1.0] [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Op = Callable[[], object]


def _aes(size: int) -> tuple[Op, Op]:
    aead = AESGCM(AESGCM.generate_key(256))
    data = os.urandom(size)
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, data, None)
    # A fresh nonce per encryption is part of the real cost, so it is measured too.
    return (lambda: aead.encrypt(os.urandom(12), data, None)), (lambda: aead.decrypt(nonce, sealed, None))


def _hmac() -> tuple[Op, Op]:
    key, data = os.urandom(32), os.urandom(64)

    def generate() -> bytes:
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(data)
        return h.finalize()

    mac = generate()

    def verify() -> None:
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(data)
        h.verify(mac)

    return generate, verify


def _ecdsa() -> tuple[Op, Op]:
    key, data, algo = ec.generate_private_key(ec.SECP256R1()), os.urandom(64), ec.ECDSA(hashes.SHA256())
    public, signature = key.public_key(), key.sign(data, algo)
    return (lambda: key.sign(data, algo)), (lambda: public.verify(signature, data, algo))


def _ed25519() -> tuple[Op, Op]:
    key, data = ed25519.Ed25519PrivateKey.generate(), os.urandom(64)
    public, signature = key.public_key(), key.sign(data)
    return (lambda: key.sign(data)), (lambda: public.verify(signature, data))


def _rsa() -> tuple[Op, Op]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    data = os.urandom(64)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
    public, signature = key.public_key(), key.sign(data, pss, hashes.SHA256())
    return (lambda: key.sign(data, pss, hashes.SHA256())), (
        lambda: public.verify(signature, data, pss, hashes.SHA256())
    )


BUILDERS: dict[tuple[str, str], Callable[[], tuple[Op, Op]]] = {
    ("encrypt-64B", "decrypt-64B"): lambda: _aes(64),
    ("encrypt-4KiB", "decrypt-4KiB"): lambda: _aes(4096),
    ("hmac-generate", "hmac-verify"): _hmac,
    ("ecdsa-p256-sign", "ecdsa-p256-verify"): _ecdsa,
    ("ed25519-sign", "ed25519-verify"): _ed25519,
    ("rsa4096-sign", "rsa4096-verify"): _rsa,
}
NAMES = [name for pair in BUILDERS for name in pair]


def ops_per_second(op: Op, seconds: float) -> float:
    """Calls per second of `op` over at least `seconds` (batched so the clock is not the cost)."""
    op()  # warm up (first-call allocations, lazy initialisation)
    count, batch = 0, 1
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            op()
        count += batch
        batch = min(batch * 2, 256)
    return count / elapsed


def measure(seconds: float, only: set[str] | None = None) -> dict[str, float]:
    results: dict[str, float] = {}
    for names, build in BUILDERS.items():
        if only is not None and not only.intersection(names):
            continue
        ops = build()
        for name, op in zip(names, ops, strict=True):
            if only is None or name in only:
                results[name] = ops_per_second(op, seconds)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="single-thread ops/s of the cryptography library")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per operation")
    parser.add_argument("--only", nargs="*", choices=NAMES, help="measure only these operations")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = measure(args.seconds, set(args.only) if args.only else None)
    if args.json:
        print(json.dumps({"seconds_per_op": args.seconds, "ops_per_s": results}))
    else:
        for name, rate in results.items():
            print(f"{name:20} {rate:12,.0f} ops/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
