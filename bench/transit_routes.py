"""KubeKMS's own Vault Transit routes in the load step: the Transit encrypt of the very key the
Infisical encrypt scenario uses (same run, alternating: the dialect must cost under 5 %), and
batch encrypt with 100 items per request, beside OpenBao's (issue #15).

The key is the Infisical scenario's: `bench-aes-256-gcm` of project `bench`, which Transit names
with `X-Vault-Namespace: bench` (sent by wrk from BENCH_NAMESPACE). OpenBao's key of the same
name is made by openbao.prepare (or here, for a batch-only run).

Security property: bodies hold random test data only; the token is the run's operator token,
passed to wrk in its environment like every other.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import openbao
from processes import PROJECT, Server
from scenarios import Prepared

BATCH_ITEMS = 100
BATCH_SCENARIO = f"encrypt-batch{BATCH_ITEMS}"
NAMESPACE = PROJECT


@dataclass(frozen=True)
class TransitRequest:
    """A Transit request ready for wrk: path, exact body bytes, and the namespace header."""

    path: str
    body: bytes
    namespace: str | None


def _post(server: Server, path: str, token: str, body: dict[str, Any], namespace: str | None) -> Any:
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("X-Vault-Token", token)
    if namespace is not None:
        request.add_header("X-Vault-Namespace", namespace)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"Transit POST {path}: {exc.code} {exc.read()[:300]!r}") from None


def _key_name(prepared: Prepared) -> str:
    """The Infisical scenario key's name (processes.create_key's rule)."""
    return f"bench-{prepared.scenario.algorithm.lower()}"[:32].replace("_", "-")


def encrypt(api: Server, token: str, prepared: Prepared) -> TransitRequest:
    """The Transit encrypt of an Infisical encrypt scenario: same key, same plaintext; probed once."""
    plaintext = json.loads(prepared.body)["plaintext"]
    path = f"/v1/transit/encrypt/{_key_name(prepared)}"
    reply = _post(api, path, token, {"plaintext": plaintext}, NAMESPACE)
    if not str(reply["data"]["ciphertext"]).startswith("vault:v"):
        raise RuntimeError(f"Transit probe {prepared.scenario.name}: unexpected reply {reply}")
    body = json.dumps({"plaintext": plaintext}, separators=(",", ":")).encode()
    return TransitRequest(path, body, NAMESPACE)


def _batch_body() -> dict[str, Any]:
    items = [{"plaintext": base64.b64encode(os.urandom(64)).decode()} for _ in range(BATCH_ITEMS)]
    return {"batch_input": items}


def _batch(server: Server, token: str, key: str, namespace: str | None) -> TransitRequest:
    body = _batch_body()
    path = f"/v1/transit/encrypt/{key}"
    results = _post(server, path, token, body, namespace)["data"]["batch_results"]
    if len(results) != BATCH_ITEMS or any("error" in r or "ciphertext" not in r for r in results):
        raise RuntimeError(f"batch probe on {server.name}: unexpected reply {results[:2]}")
    return TransitRequest(path, json.dumps(body, separators=(",", ":")).encode(), namespace)


def batch_kubekms(api: Server, token: str, prepared: Prepared) -> TransitRequest:
    """Batch encrypt on KubeKMS's Transit route, with the AES scenario's key."""
    return _batch(api, token, _key_name(prepared), NAMESPACE)


def batch_openbao(bao: openbao.Bao, keys: dict[str, str]) -> TransitRequest:
    """The same batch on OpenBao's Transit (its AES key, created if the run has none yet)."""
    key = keys.get("aes-256-gcm")
    if key is None:
        key = "bench-aes-256-gcm"
        bao.must("POST", f"/v1/transit/keys/{key}", openbao.KEY_TYPES["aes-256-gcm"])
        keys["aes-256-gcm"] = key
    return _batch(bao, bao.token, key, None)
