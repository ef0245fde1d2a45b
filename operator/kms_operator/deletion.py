"""Release of a deleted KmsKey's material, as its deletionPolicy says.

Retain (the default) keeps the Secret and labels it `kubekms.io/orphaned: "true"` so the key can be
restored by a KmsKey with `spec.keyId` in the same namespace (see `adoption`). Delete is
recoverable for the operator's deletion window (KUBEKMS_DELETION_WINDOW, default 7 days): the
Secret is labelled orphaned and `kubekms.io/deleted: "true"` with its purge time in
`kubekms.io/purge-at`, restorable the same way until `purge` deletes it; with a window of 0 it
is deleted at once.
Ownership is the Secret's sealed owner record (same namespace, name and UID), never its labels:
a KmsKey that claimed someone else's keyId — and so stayed Degraded — cannot delete or orphan it.

Security property: nothing is unsealed; only labels, annotations or the whole Secret change.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from kms_kube import layout as m
from kms_kube.client import ApiError, Conflict, KubeError
from kms_kube.layout import kmskey_path, secrets_path
from kms_operator import adoption, clock, events, rejections
from kms_operator.context import Degraded, Runtime


async def release(
    rt: Runtime,
    namespace: str | None,
    name: str,
    body: dict[str, Any],
    logger: logging.Logger | Any,
    retry: int = 0,
) -> None:
    """On deletion: delete the material (deletionPolicy Delete) or keep it, labelled orphaned.

    Errors follow `rejections`: the finalizer stays while conflicts and the API server's trouble
    are retried; a refused write (e.g. a policy forbidding the Secret's deletion) is attempted a
    bounded number of times, with a Warning Event, and then the KmsKey is let go with its
    material left as it is (never deleted without a successful request, never blocking the
    namespace's deletion forever)."""
    namespace = str(namespace)  # KmsKeys are namespaced
    try:
        await _release(rt, namespace, name, body, logger)
    except Conflict as e:
        raise kopf.TemporaryError(f"concurrent change, retrying: {e.reason}", delay=0.5) from e
    except ApiError as e:
        if not rejections.is_rejection(e):
            raise kopf.TemporaryError(f"Kubernetes API error: {e}", delay=_delay(rt, retry)) from e
        await _refused(rt, namespace, name, body, e, logger)
    except KubeError as e:
        raise kopf.TemporaryError(f"Kubernetes API error: {e}", delay=_delay(rt, retry)) from e
    rt.rejections.clear((namespace, name))


def _delay(rt: Runtime, retry: int) -> float:
    return rejections.backoff(rt.settings.retry_delay, retry)


async def _refused(
    rt: Runtime,
    namespace: str,
    name: str,
    body: dict[str, Any],
    error: ApiError,
    logger: logging.Logger | Any,
) -> None:
    """Count a refused release; retry (TemporaryError) until the attempts are used up."""
    ref, desire = (namespace, name), rejections.desire_of(body)
    attempt, limit = rt.rejections.record(ref, desire), rt.settings.rejected_attempts
    message = rejections.describe(error)
    if attempt == 1:
        logger.warning("releasing the material failed: %s", message)
        await events.warn(body, rejections.REASON, message)
    if attempt < limit:
        delay = rejections.backoff(rt.settings.retry_delay, attempt - 1)
        raise kopf.TemporaryError(f"{message} (attempt {attempt} of {limit})", delay=delay) from error
    logger.error("giving up releasing the material after %d refused attempts; it is left as it is", attempt)
    await events.warn(
        body, "MaterialLeftInPlace",
        f"Gave up releasing this key's material after {attempt} refused attempts; "
        "its Secret was left as it is (neither deleted nor labelled orphaned)",
    )


async def _release(
    rt: Runtime, namespace: str, name: str, body: dict[str, Any], logger: logging.Logger | Any
) -> None:
    async with rt.lock(namespace, name):
        rt.index.forget((namespace, name))  # its Secret's later changes are not this key's any more
        key = await rt.api.get_or_none(kmskey_path(namespace, name)) or body
        spec, st = key.get("spec") or {}, key.get("status") or {}
        key_id: str | None = st.get("keyId") or spec.get("keyId")
        if not key_id:
            return  # the key never had material
        secret_name = m.secret_name(key_id)
        path = secrets_path(rt.settings.namespace, secret_name)
        secret = await rt.api.get_or_none(path)
        if secret is None or m.ORPHANED in m.labels_of(secret):
            return  # no material, or already released
        if not await _owns(rt, secret, key_id, key):
            return  # material this KmsKey does not own (its record names another): never touched
        delete = spec.get("deletionPolicy", "Retain") == "Delete"
        window = rt.settings.deletion_window
        if delete and window <= 0:
            await rt.api.delete(path)
            logger.info("Deleted the material of key %s (deletionPolicy Delete)", key_id)
            await events.info(key, "MaterialDeleted", f"Deleted the material of key {key_id}")
            return
        now = clock.now()
        orphaned: dict[str, Any] = {
            "metadata": {"labels": {m.ORPHANED: "true"}, "annotations": {m.ORPHANED_AT: m.timestamp(now)}}
        }
        if delete:
            purge_at = m.timestamp(now + datetime.timedelta(seconds=window))
            orphaned["metadata"]["labels"][m.DELETED] = "true"
            orphaned["metadata"]["annotations"][m.PURGE_AT] = purge_at
        await rt.api.merge_patch(path, orphaned)
        await rt.api.merge_patch(kmskey_path(namespace, name, "status"), {"status": {"orphaned": True}})
        if delete:
            logger.info("Deleted key %s: Secret %s kept until %s, then purged", key_id, secret_name, purge_at)
            await events.info(
                key, "MaterialDeletionScheduled",
                f"Kept Secret {secret_name} until {purge_at} (deletionPolicy Delete): a KmsKey with "
                f"spec.keyId {key_id} in this namespace restores the key until then",
            )
            return
        logger.info("Retained the material of key %s as orphaned Secret %s", key_id, secret_name)
        await events.info(key, "MaterialRetained", f"Kept Secret {secret_name} (orphaned)")


async def _owns(rt: Runtime, secret: dict[str, Any], key_id: str, key: dict[str, Any]) -> bool:
    """Whether the Secret's owner record names exactly this KmsKey. Material from before owner
    records existed is owned by the KmsKey its labels name (the operator's own labels)."""
    meta = key.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    try:
        record = await adoption.read_record(rt, secret, key_id)
    except Degraded:
        return False  # a record that does not authenticate: leave the material alone
    if record is None:
        return m.owned_by(secret, namespace, name)
    return record.owned_by(namespace, name, meta.get("uid"))
