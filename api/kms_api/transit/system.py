"""What Vault clients call around Transit: `sys/health`, `sys/seal-status`, `sys/mounts`,
`auth/token/lookup-self`, and the key-less `transit/random` and `transit/hash`.

KubeKMS has no seal to open and one Transit mount: health and seal status always read
initialized and unsealed (readiness is `/readyz`), and `sys/mounts` lists `transit/` only.

Security property: `lookup-self` describes the caller's identity by its loggable id, never by
the token it presented (Vault echoes the token as `id`; KubeKMS does not); random bytes come
from the OS generator.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Final

import pybase64

from kms_api.http.json_body import CRYPTO_LIMIT
from kms_api.pipeline.call import Call
from kms_api.transit.envelope import VaultError, wrap
from kms_api.transit.inputs import Base64Error, b64decode, project_of, read_body, text
from kms_api.transit.types import HASHES
from kms_core.outcome import Outcome
from kms_core.policy import Action

__all__ = ["hash_input", "health", "lookup_self", "mounts", "random_bytes", "reply", "seal_status", "wrapped"]

VERSION: Final = "2.7.2"  # the OpenBao release whose API this dialect is checked against
CLUSTER_NAME: Final = "kubekms"
RANDOM_LIMIT: Final = 128 * 1024
_SOURCES: Final = ("platform", "seal", "all")  # KubeKMS has no seal: every source is the OS's
_STARTED: Final = datetime.now(UTC)
_TRANSIT_MOUNT: Final = {
    "accessor": "transit_kubekms",
    "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
    "deprecation_status": "supported",
    "description": "KubeKMS keys (the same keys as the Infisical KMS API)",
    "external_entropy_access": False,
    "local": False,
    "options": {},
    "plugin_version": "",
    "running_plugin_version": "",
    "running_sha256": "",
    "seal_wrap": False,
    "type": "transit",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def reply(call: Call, outcome: Outcome[Any]) -> Any:
    """Handlers whose result is the whole reply body (health, seal status, mounts)."""
    return outcome.result


def wrapped(call: Call, outcome: Outcome[Any]) -> Any:
    """Handlers whose result is the envelope's `data`."""
    return wrap(outcome.result)


async def health(call: Call) -> Outcome[dict[str, Any]]:
    return Outcome(
        {
            "initialized": True,
            "sealed": False,
            "standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": VERSION,
            "cluster_name": CLUSTER_NAME,
            "cluster_id": _TRANSIT_MOUNT["uuid"],
        }
    )


async def seal_status(call: Call) -> Outcome[dict[str, Any]]:
    return Outcome(
        {
            "type": "shamir",
            "initialized": True,
            "sealed": False,
            "t": 1,
            "n": 1,
            "progress": 0,
            "nonce": "",
            "recovery_seal": False,
            "version": VERSION,
            "commit_date": "",
            "migration": False,
            "cluster_name": CLUSTER_NAME,
            "cluster_id": _TRANSIT_MOUNT["uuid"],
            "storage_type": "kubekms",
        }
    )


async def _allowed(call: Call) -> str:
    """Key-less routes: the caller may read in the namespace's project."""
    project = project_of(call.request)
    await call.service.allow(call.caller, Action.READ, project, None)
    return project


async def mounts(call: Call) -> Outcome[dict[str, Any]]:
    project = await _allowed(call)
    table = {"transit/": _TRANSIT_MOUNT}
    # Vault answers the mount table both at the top level (legacy) and in `data`.
    return Outcome({**table, **wrap(table)}, None, project)


async def lookup_self(call: Call) -> Outcome[dict[str, Any]]:
    project = await _allowed(call)
    identity = call.caller
    return Outcome(
        {
            "accessor": "",
            "creation_time": int(_STARTED.timestamp()),
            "creation_ttl": 0,
            "display_name": identity.name,
            "entity_id": identity.id,
            "expire_time": None,
            "explicit_max_ttl": 0,
            "id": identity.id,  # not the token: KubeKMS never returns a credential
            "issue_time": _STARTED.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "meta": None,
            "num_uses": 0,
            "orphan": True,
            "path": "",
            "policies": ["default"],
            "renewable": False,
            "ttl": 0,
            "type": "service",
        },
        None,
        project,
    )


def _byte_count(call: Call, body: dict[str, Any]) -> int:
    """`random(/:source)(/:bytes)` as OpenBao matches it: with two parts the first is the
    source and the rest the count; a single part is a source if it names one, else the count."""
    tail = call.request.match_info.get("tail", "").strip("/")
    source, _, rest = tail.partition("/")
    if not rest and source not in _SOURCES:
        source, rest = "", source
    if rest:
        if not rest.isascii() or not rest.lstrip("-").isdigit():
            raise VaultError(
                400, f'error parsing url-set byte count: strconv.Atoi: parsing "{rest}": invalid syntax'
            )
        if source and source not in _SOURCES:
            raise VaultError(400, f"unsupported entropy source {source!r}")
        return int(rest)
    value = body.get("bytes", 32)
    try:
        return int(text(value, "bytes") or 32)
    except ValueError:
        raise VaultError(400, "error converting input for field 'bytes': expected an integer") from None


def _format(body: dict[str, Any], default: str, quoted: bool) -> str:
    fmt = text(body.get("format"), "format") or default
    if fmt not in ("hex", "base64"):
        shown = f'"{fmt}"' if quoted else fmt  # OpenBao quotes it for random, not for hash
        raise VaultError(400, f'unsupported encoding format {shown}; must be "hex" or "base64"')
    return fmt


async def random_bytes(call: Call) -> Outcome[dict[str, Any]]:
    project = await _allowed(call)
    body = await read_body(call.request, CRYPTO_LIMIT)
    count = _byte_count(call, body)
    if count < 1:
        raise VaultError(400, "'bytes' cannot be less than 1")
    if count > RANDOM_LIMIT:
        raise VaultError(400, f"'bytes' should be less than {RANDOM_LIMIT}")
    fmt = _format(body, "base64", quoted=True)
    data = secrets.token_bytes(count)
    encoded = data.hex() if fmt == "hex" else pybase64.b64encode_as_string(data)
    return Outcome({"random_bytes": encoded}, None, project)


async def hash_input(call: Call) -> Outcome[dict[str, Any]]:
    project = await _allowed(call)
    body = await read_body(call.request, CRYPTO_LIMIT)
    raw = text(body.get("input"), "input")
    if not raw:
        raise VaultError(400, "input missing")
    algorithm = (
        call.request.match_info.get("algorithm") or text(body.get("algorithm"), "algorithm") or "sha2-256"
    )
    fmt = _format(body, "hex", quoted=False)
    try:
        data = b64decode(raw)
    except Base64Error as exc:
        raise VaultError(400, f"unable to decode input as base64: {exc}") from None
    name = HASHES.get(algorithm)
    if name is None:
        raise VaultError(400, f"unsupported algorithm {algorithm}")
    digest = hashlib.new(name, data).digest()
    encoded = digest.hex() if fmt == "hex" else pybase64.b64encode_as_string(digest)
    return Outcome({"sum": encoded}, None, project)
