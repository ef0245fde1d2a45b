"""The truly bare endpoints: the cheapest JSON endpoint aiohttp serves, and the same `cryptography`
call as KubeKMS for signing and verifying: the honest ceilings for one worker.

- encrypt, decrypt, generate-mac, verify-mac: parse the JSON body, decode its base64 field, answer
  a JSON body of the size the real API sends (`X-Bench-Reply-Bytes`, as `baseline_server.py`).
  No crypto, no logging, no request id, no auth check, no middleware: an aiohttp application with
  one route, uvloop and orjson, and nothing else.
- sign, verify on a key this server made (`POST /api/v1/kms/keys` answers a key whose id is its
  algorithm): the same as above plus the very `cryptography` call KubeKMS makes (ECDSA P-256 with
  SHA-256, Ed25519, RSA-4096 PSS with SHA-256), answering KubeKMS's reply shape. So an API/bare
  ratio for signing is the cost of everything KubeKMS adds around the primitive.

Security property: none needed: keys are generated at start-up in memory, bodies are bench data;
it never logs. Never point anything but the benchmark at it.
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import signal
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pybase64
import uvloop
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

_EMPTY_REPLY = len(b'{"result":""}')
_MAX_REPLY = 4 * 1024 * 1024
# The base64 field each operation carries (what KubeKMS decodes first).
FIELDS = {"encrypt": "plaintext", "decrypt": "ciphertext", "generate-mac": "data", "verify-mac": "data"}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)

Signer = Callable[[bytes], bytes]
Verifier = Callable[[bytes, bytes], None]


def _keys() -> dict[str, tuple[Signer, Verifier]]:
    """One key per signing algorithm KubeKMS is benchmarked with, named by that algorithm."""
    p256 = ec.generate_private_key(ec.SECP256R1())
    ecdsa = ec.ECDSA(hashes.SHA256())
    ed = ed25519.Ed25519PrivateKey.generate()
    rsa4096 = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    p256_pub, ed_pub, rsa_pub = p256.public_key(), ed.public_key(), rsa4096.public_key()
    return {
        "ECC_NIST_P256": (
            lambda d: p256.sign(d, ecdsa),
            lambda s, d: p256_pub.verify(s, d, ecdsa),
        ),
        "ECC_NIST_ED25519": (ed.sign, ed_pub.verify),
        "RSA_4096": (
            lambda d: rsa4096.sign(d, _PSS, hashes.SHA256()),
            lambda s, d: rsa_pub.verify(s, d, _PSS, hashes.SHA256()),
        ),
    }


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def make_app() -> web.Application:
    keys = _keys()

    async def create_key(request: web.Request) -> web.Response:
        algorithm = orjson.loads(await request.read()).get("algorithm", "")
        if algorithm not in keys:
            return _json({"key": {"id": "none"}})  # symmetric scenarios never use the key
        return _json({"key": {"id": algorithm}})

    async def operate(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        op, key_id = request.match_info["op"], request.match_info["keyId"]
        try:
            if op in ("sign", "verify") and key_id in keys:
                sign, verify = keys[key_id]
                data = pybase64.b64decode(body["data"], validate=True)
                if op == "sign":
                    signature = pybase64.b64encode(sign(data)).decode()
                    return _json(
                        {
                            "signature": signature,
                            "keyId": key_id,
                            "signingAlgorithm": body["signingAlgorithm"],
                        }
                    )
                try:
                    verify(pybase64.b64decode(body["signature"], validate=True), data)
                    valid = True
                except InvalidSignature:
                    valid = False
                return _json(
                    {"signatureValid": valid, "keyId": key_id, "signingAlgorithm": body["signingAlgorithm"]}
                )
            pybase64.b64decode(body[FIELDS.get(op, "data")], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            return _json({"statusCode": 422}, status=422)
        size = min(int(request.headers.get("X-Bench-Reply-Bytes", "64")), _MAX_REPLY)
        return _json({"result": "A" * max(0, size - _EMPTY_REPLY)})

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post("/api/v1/kms/keys", create_key)
    app.router.add_post("/api/v1/kms/keys/{keyId}/{op}", operate)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    # The one line the bench's readiness check waits for (processes.Server.wait_ready).
    print('{"message": "listening"}', file=sys.stderr, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
