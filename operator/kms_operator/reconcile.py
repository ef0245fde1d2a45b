"""Reconciliation of one KmsKey: keyId, material Secret, adoption, rotation, status.

`converge` is idempotent and safe to interrupt anywhere (SIGKILL included):
1. the keyId is decided once and persisted in status (JSON-patch with a resourceVersion test)
   before any material exists, so a restart reuses it;
2. material is minted only when the key has never had any (no `spec.keyId`, no `status.version`)
   and its Secret is absent; the Secret is created with create-if-absent semantics (409 -> the
   existing Secret is used and the freshly minted blob is dropped unsaved), with a sealed owner
   record naming this KmsKey (namespace, name, UID) and the material's fixed attributes;
   who may use an existing Secret is decided by that record alone (`adoption.claim`);
3. a rotation request (annotation `kubekms.io/rotate`) is recorded in the Secret together with
   the new version, in one resourceVersion-guarded patch, so a request is never performed twice;
4. the spec's lifecycle policy is checked and put in force, trimming is done when allowed, and a
   scheduled rotation is made when due (`policy`, `rotation`: guarded the same way);
5. status is written last, and only when it changed.
API errors follow `rejections`: a write the API server refuses (CEL, schema, size, RBAC) makes the
key Degraded/ApiRejected with the server's message and is attempted a bounded number of times.
A Secret that disappeared, was sealed under another KEK, or does not unseal makes the key
Degraded (with one Warning event) and is never replaced: old ciphertexts must stay decryptable.
Each run records in `rt.index` which Secret the key uses and whether it came out Degraded, so the
Secret watch can converge it at once when that Secret is deleted, changed or restored.

Security property: material is unsealed only in memory, to check it and derive the public key;
nothing here logs or writes unsealed material.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import Any

import kopf

from kms_core import material
from kms_core.algorithms import is_asymmetric, is_compatible
from kms_core.derivation import check_derivable
from kms_core.errors import BadRequest
from kms_core.keyring import Keyring
from kms_core.model import Algorithm, KeyUsage
from kms_core.sealing.base import Sealer, UnsealError
from kms_kube import layout as m
from kms_kube.client import ApiError, Conflict, KubeError
from kms_kube.layout import kmskey_path, secrets_path
from kms_operator import adoption, clock, events, policy, rejections, rotation, status
from kms_operator.context import Degraded, Runtime
from kms_operator.keycontext import KeyContext


async def converge(
    rt: Runtime, namespace: str | None, name: str, logger: logging.Logger | Any, retry: int = 0
) -> None:
    """Bring one KmsKey's material and status to the desired state (see the module docstring).

    API errors are classified by `rejections`: conflicts retry soon, the API server's trouble
    retries with backoff (`retry`: Kopf's retry count of the calling handler), and a refused
    write makes the key Degraded/ApiRejected with a bounded number of attempts."""
    namespace = str(namespace)  # KmsKeys are namespaced
    ref = (namespace, name)
    async with rt.lock(namespace, name):
        key: dict[str, Any] | None = None
        try:
            key = await rt.api.get_or_none(kmskey_path(namespace, name))
            if key is None or key["metadata"].get("deletionTimestamp"):
                rt.index.forget(ref)
                rt.rejections.clear(ref)
                return
            desire = rejections.desire_of(key)
            if rt.rejections.attempts(ref, desire) >= rt.settings.rejected_attempts:
                logger.debug("not retrying: the API server refused this spec's writes (ApiRejected)")
                return
            try:
                fields, warning = await _converge(rt, key, logger)
            except Degraded as d:
                rt.index.mark(ref, degraded=True)
                await _report(rt, key, status.Health.degraded(d.reason, d.message), logger, **d.fields)
                rt.rejections.clear(ref)
                return
            rt.index.mark(ref, degraded=False)
            disabled = bool(key.get("spec", {}).get("disabled", False))
            await _report(rt, key, status.Health.ok(disabled, warning), logger, disabled=disabled, **fields)
            rt.rejections.clear(ref)
        except Conflict as e:
            raise kopf.TemporaryError(f"concurrent change, retrying: {e.reason}", delay=0.5) from e
        except KubeError as e:
            if key is not None and isinstance(e, ApiError) and rejections.is_rejection(e):
                await _rejected(rt, key, e, logger)
                return
            delay = rejections.backoff(rt.settings.retry_delay, retry)
            raise kopf.TemporaryError(f"Kubernetes API error: {e}", delay=delay) from e


async def _rejected(rt: Runtime, key: dict[str, Any], error: ApiError, logger: logging.Logger | Any) -> None:
    """A write was refused: Degraded/ApiRejected with the API server's message, one Warning Event
    per desire, and a TemporaryError until the attempts for this desire are used up."""
    meta = key["metadata"]
    ref, desire = (meta["namespace"], meta["name"]), rejections.desire_of(key)
    attempt = rt.rejections.record(ref, desire)
    limit = rt.settings.rejected_attempts
    message = rejections.describe(error)
    rt.index.mark(ref, degraded=True)
    if attempt == 1:
        logger.warning("KmsKey degraded: %s: %s", rejections.REASON, message)
        await events.warn(key, rejections.REASON, message)
    try:
        await _write_status(rt, key, status.Health.degraded(rejections.REASON, message))
    except KubeError as e:  # the status write may be the very request that is refused
        logger.warning("could not record %s in the status: %s", rejections.REASON, e)
    if attempt >= limit:
        logger.error(
            "giving up after %d refused attempts; a spec change, a new rotation request or an "
            "operator restart tries again", attempt,
        )
        return
    delay = rejections.backoff(rt.settings.retry_delay, attempt - 1)
    raise kopf.TemporaryError(f"{message} (attempt {attempt} of {limit})", delay=delay) from error


async def _converge(
    rt: Runtime, key: dict[str, Any], logger: logging.Logger | Any
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The status fields of a servable key, and a Degraded warning for a refused policy."""
    spec, st = key.get("spec") or {}, key.get("status") or {}
    try:
        usage = KeyUsage(spec.get("keyUsage", KeyUsage.ENCRYPT_DECRYPT.value))
        alg = Algorithm(spec.get("algorithm", Algorithm.AES_256_GCM.value))
    except ValueError as e:
        raise Degraded("InvalidSpec", f"unknown keyUsage or algorithm: {e}") from e
    if not is_compatible(usage, alg):
        raise Degraded("InvalidSpec", f"algorithm {alg.value} is not valid for keyUsage {usage.value}")
    try:  # the CRD's rules refuse these at admission; like the usage check, not relied upon here
        check_derivable(alg, *adoption.derivation(key))
    except BadRequest as e:
        raise Degraded("InvalidSpec", str(e)) from e
    adopted = spec.get("keyId") or None
    if adopted and st.get("keyId") not in (None, adopted):
        raise Degraded("KeyIdMismatch", f"spec.keyId {adopted} differs from status.keyId {st['keyId']}")
    key_id = adopted or st.get("keyId")
    if key_id is None:
        key_id = str(uuid.uuid4())
        key = await _persist_key_id(rt, key, key_id)
        st = key.get("status") or {}

    name = m.secret_name(key_id)
    rt.index.bind(name, (key["metadata"]["namespace"], key["metadata"]["name"]))
    secret = await rt.api.get_or_none(secrets_path(rt.settings.namespace, name))
    if secret is None:
        if adopted:
            raise Degraded(
                "SecretMissing",
                f"Secret {name} for the adopted keyId does not exist; no material was created",
                keyId=key_id,
                secretName=name,
            )
        if st.get("version"):
            raise Degraded(
                "SecretMissing",
                f"Secret {name} holding this key's material is missing; "
                "refusing to create new material (existing ciphertexts would be lost)",
            )
        secret = await _create(rt, key, key_id, usage, alg, logger)
    secret = await adoption.claim(rt, key, secret, key_id, bool(adopted), usage, alg)
    _check_secret(rt, secret, key_id, alg)
    ctx = KeyContext(rt, key, key_id, usage, alg, logger)
    secret, handled = await rotation.rotate(ctx, secret)
    decision = policy.decide(key, secret, usage, alg)
    secret, decision = await policy.trim(ctx, secret, decision)
    secret = await rotation.rotate_on_schedule(ctx, secret, decision.policy)

    versions = m.versions(secret)
    current = max(versions)
    _check_versions(name, versions, st.get("version"), m.min_available(secret))
    public = st.get("publicKey") if st.get("version") == current else None
    # The current version is unsealed on every converge (one AEAD check; converges are rare now
    # that Secret changes arrive by watch): a blob replaced in place is caught, not only a new one.
    want_public = is_asymmetric(alg) and public is None
    sealed = versions[current]
    derived = await asyncio.to_thread(_verify, rt.sealer, key_id, alg, current, sealed, want_public)
    public = derived if want_public else public
    made = m.version_times(secret).get(current)
    due = rotation.due_at(secret, decision.policy)
    disabled = bool(spec.get("disabled", False))
    fields = {
        "keyId": key_id, "version": current, "secretName": name, "publicKey": public, "rotation": handled,
        "policy": decision.policy.status(),
        "versions": policy.versions_status(secret, decision.policy, usage, alg),
        "lastRotationTime": m.timestamp(made) if made else None,
        "nextRotationTime": m.timestamp(due) if due and not disabled else None,
    }
    warning = (policy.REFUSED, decision.refusal) if decision.refusal else None
    return fields, warning


def _check_versions(name: str, versions: dict[int, bytes], known: Any, trimmed_below: int = 0) -> None:
    """Every version from 1 (or from the trimming bound) to the newest must be there, and the
    newest must not be older than the one the key already reported: serving an older version
    would leave the ciphertexts of the lost ones undecryptable without anyone noticing."""
    current = max(versions)
    if isinstance(known, int) and current < known:
        raise Degraded(
            "MaterialMissing",
            f"Secret {name} holds versions up to {current} but the key is at version {known}; "
            "refusing to fall back to an older version",
        )
    missing = [v for v in range(max(1, trimmed_below), current) if v not in versions]
    if missing:
        raise Degraded("MaterialMissing", f"Secret {name} lacks key versions {missing}")


async def _persist_key_id(rt: Runtime, key: dict[str, Any], key_id: str) -> dict[str, Any]:
    meta = key["metadata"]
    test = {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
    add = (
        {"op": "add", "path": "/status/keyId", "value": key_id}
        if key.get("status")
        else {"op": "add", "path": "/status", "value": {"keyId": key_id}}
    )
    path = kmskey_path(meta["namespace"], meta["name"], "status")
    return await rt.api.json_patch(path, [test, add])


async def _create(
    rt: Runtime,
    key: dict[str, Any],
    key_id: str,
    usage: KeyUsage,
    alg: Algorithm,
    logger: logging.Logger | Any,
) -> dict[str, Any]:
    sealed = await asyncio.to_thread(material.mint, key_id, 1, alg, rt.sealer)
    record = await adoption.record_for_new(rt, key, key_id, usage, alg)
    meta = key["metadata"]
    body = m.secret(
        key_id=key_id,
        namespace=rt.settings.namespace,
        owner_namespace=meta["namespace"],
        owner_name=meta["name"],
        kek_id=rt.sealer.kek_id,
        algorithm=alg.value,
        key_usage=usage.value,
        sealed=sealed,
        record=record,
        created_at=clock.now(),
    )
    try:
        created = await rt.api.create(secrets_path(rt.settings.namespace), body)
    except Conflict:
        # Another attempt stored material first: adopt it; this blob is dropped unsaved.
        existing = await rt.api.get_or_none(secrets_path(rt.settings.namespace, m.secret_name(key_id)))
        if existing is None:
            raise
        return existing
    logger.info("Created key material version 1 in Secret %s", m.secret_name(key_id))
    await events.info(key, "MaterialCreated", f"Created key {key_id} version 1")
    return created


def _check_secret(rt: Runtime, secret: dict[str, Any], key_id: str, alg: Algorithm) -> None:
    notes, name = m.annotations_of(secret), m.secret_name(key_id)
    if notes.get(m.KEK_ID) != rt.sealer.kek_id:
        raise Degraded(
            "KekMismatch",
            f"Secret {name} was sealed with kek_id {notes.get(m.KEK_ID)} but this "
            f"operator's key has kek_id {rt.sealer.kek_id}; nothing was written",
        )
    if notes.get(m.ALGORITHM) not in (None, alg.value):
        raise Degraded("AlgorithmMismatch", f"Secret {name} holds {notes.get(m.ALGORITHM)} material")
    if not m.versions(secret):
        raise Degraded("SecretInvalid", f"Secret {name} holds no version-<n> entries")


def _verify(
    sealer: Sealer, key_id: str, alg: Algorithm, version: int, sealed: bytes, want_public: bool = True
) -> str | None:
    """Unseal the current version (it must authenticate); with `want_public`, the public key of an
    asymmetric key."""
    try:
        raw = material.unseal(key_id, version, alg, sealed, sealer)
    except UnsealError as e:
        raise Degraded("UnsealFailed", f"version {version} of key {key_id} does not unseal") from e
    if not (want_public and is_asymmetric(alg)):
        return None
    return base64.b64encode(Keyring(alg, {version: raw}, version).public_key()).decode()


async def _report(
    rt: Runtime, key: dict[str, Any], health: status.Health, logger: logging.Logger | Any, **fields: Any
) -> None:
    st = key.get("status") or {}
    degraded = health.degraded_by
    if degraded is not None and not status.was_degraded_for(st, degraded[0]):
        logger.warning("KmsKey degraded: %s: %s", *degraded)
        await events.warn(key, *degraded)
    await _write_status(rt, key, health, **fields)


async def _write_status(rt: Runtime, key: dict[str, Any], health: status.Health, **fields: Any) -> None:
    """Merge-patch the status when it changed (a healthy key causes no writes)."""
    st = key.get("status") or {}
    new = status.desired(st, health, key["metadata"].get("generation"), **fields)
    if status.changed(st, new):
        path = kmskey_path(key["metadata"]["namespace"], key["metadata"]["name"], "status")
        await rt.api.merge_patch(path, {"status": status.merge_patch(st, new)})
