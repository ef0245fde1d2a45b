"""The Kubernetes store's write path: KmsKey create, patch and delete, then wait for the operator.

The API never writes key material. A create or a rotation is a request recorded on a KmsKey
object; the operator makes (or rotates) the material and reports back through `status`, and
`KmsKeyWriter` waits on the watch-fed KmsKey cache until it does, or answers 504 after
`ready_timeout` seconds. Every write is put into the cache as soon as the API server accepts
it, so this process reads its own writes even before the watch delivers them. `call` turns
transport and server failures into 503s, for reads and writes alike.

Security property: only KmsKey objects (names, spec fields, annotations) are written here, never
Secrets and never material; API-server error details reach clients only for requests the server
rejected as invalid, and a refusal of KubeKMS's own credentials is logged, not returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from kms_api.kube import kmskey as kk
from kms_core.errors import BadRequest, DuplicateName, NotFound, Timeout, Unavailable
from kms_core.lifecycle import format_duration
from kms_core.model import KeySpec
from kms_kube.client import ApiError, JsonDict, KubeClient, KubeUnavailable
from kms_kube.layout import Policy
from kms_kube.reflector import ObjectCache
from kms_kube.reflector import object_key as _name

# The store's logger: these records were always the store's, and log filters name it.
log = logging.getLogger("kms_api.kube.store")
T = TypeVar("T")

RENAME_REFUSED = (
    "Renaming a key is not supported in Kubernetes mode: the key name is the KmsKey object's name"
)
IMPORT_REFUSED = (
    "Importing key material is not supported in Kubernetes mode: the operator is the only writer of "
    "key material. Restore existing material by creating a KmsKey with spec.keyId instead."
)
# A derived key's KmsKey that came back without its derivation fields (a CRD from before them
# prunes unknown fields), or was minted plain (an operator from before them): refused, never
# served plain.
DERIVATION_NOT_KEPT = (
    "The KmsKey did not keep derived / convergentEncryption: install the current KubeKMS CRD and "
    "operator (spec.derived and spec.convergentEncryption) to create derived keys in Kubernetes mode"
)

# How often a writer waiting for the operator re-reads its KmsKey while the watch is down.
POLL_WHILE_WATCH_DOWN = 2.0


async def call(awaitable: Awaitable[T]) -> T:
    """Translate transport and server failures into 503 (the client may retry)."""
    try:
        return await awaitable
    except KubeUnavailable:
        raise Unavailable("The Kubernetes API server is unavailable") from None
    except ApiError as exc:
        if exc.retriable:
            raise Unavailable(f"The Kubernetes API server is unavailable ({exc.status})") from None
        if exc.status in (401, 403):
            log.error("Kubernetes API refused KubeKMS's own request: %s", exc.reason)
            raise Unavailable("The Kubernetes API refused KubeKMS's request; check its RBAC") from None
        raise


class KmsKeyWriter:
    """Writes KmsKey objects through `client` and waits for the operator on the `keys` cache."""

    def __init__(self, client: KubeClient, keys: ObjectCache, *, ready_timeout: float = 30.0) -> None:
        self.client = client
        self.keys = keys
        self.ready_timeout = ready_timeout

    async def create(self, spec: KeySpec) -> JsonDict:
        """Write a KmsKey for `spec`; return it once the operator reports it Ready."""
        body = kk.manifest(spec, datetime.now(UTC))
        try:
            created = await call(self.client.create(kk.kmskeys_path(spec.project_id), body))
        except ApiError as exc:
            if exc.status == 409:
                raise DuplicateName(spec.name, spec.project_id) from None
            if exc.status == 404:
                raise NotFound(f"Project with {spec.project_id} not found") from None
            raise BadRequest(f"The Kubernetes API rejected the KmsKey: {exc.message}") from None
        if _derivation(created) != (spec.derived, spec.convergent_encryption):
            # Before the operator mints anything: remove the object rather than leave a plain key.
            version = (created.get("metadata") or {}).get("resourceVersion")
            with contextlib.suppress(Unavailable, ApiError):  # only the object written here
                await call(self.client.delete(kk.kmskeys_path(spec.project_id, spec.name), version))
            raise BadRequest(DERIVATION_NOT_KEPT)
        self.keys.put(created)
        uid = (created.get("metadata") or {}).get("uid")
        return await self._wait(spec.project_id, spec.name, uid, kk.is_ready, "to make its key material")

    async def update(
        self, key_id: str, obj: JsonDict, *, name: str | None, description: str | None,
        is_disabled: bool | None, has_delete_protection: bool | None,
    ) -> JsonDict:
        """Patch the KmsKey `obj` of `key_id` with the given changes; return the patched object."""
        ns, current = _name(obj)
        if name is not None and name != current:
            raise BadRequest(RENAME_REFUSED)
        spec: JsonDict = {}
        if description is not None:
            spec["description"] = description
        if is_disabled is not None:
            spec["disabled"] = is_disabled
        annotations: dict[str, str | None] = {kk.UPDATED_ANNOTATION: kk.iso(datetime.now(UTC))}
        if has_delete_protection is not None:
            annotations[kk.DELETE_PROTECTION_ANNOTATION] = "true" if has_delete_protection else None
            if not has_delete_protection and "deletionAllowed" in (obj.get("spec") or {}):
                spec["deletionAllowed"] = None  # the spec's flag protects too: lift both
        patch: JsonDict = {"metadata": {"annotations": annotations}}
        if spec:
            patch["spec"] = spec
        return await self._patch(key_id, ns, current, patch)

    async def delete(self, key_id: str, obj: JsonDict) -> None:
        """Delete the KmsKey `obj` of `key_id` (its material stays unless its policy says Delete)."""
        ns, name = _name(obj)
        try:
            await call(self.client.delete(kk.kmskeys_path(ns, name)))
        except ApiError as exc:
            if exc.status == 404:
                raise NotFound(f"Key with ID {key_id} not found") from None
            raise
        # Read-your-writes: the key is gone for this process even before the watch says so.
        self.keys.remove(ns, name)

    async def rotate(self, key_id: str, obj: JsonDict, expected_version: int) -> JsonDict:
        """Ask the operator for version `expected_version + 1` of `obj` and wait for it.

        The annotation value is the target version, so concurrent requests for the same rotation
        ask for the same thing and the operator makes one material for it.
        """
        if kk.version(obj) != expected_version:
            raise BadRequest("The key was rotated concurrently; retry with its current version")
        ns, name = _name(obj)
        target = expected_version + 1
        # No updated-at stamp: Infisical's rotation leaves the key's updatedAt alone.
        patch = {"metadata": {"annotations": {kk.ROTATE_ANNOTATION: str(target)}}}
        await self._patch(key_id, ns, name, patch)
        uid = (obj.get("metadata") or {}).get("uid")
        return await self._wait(ns, name, uid, lambda o: kk.is_ready(o) and kk.version(o) >= target,
                                f"to rotate it to version {target}")

    async def set_policy(self, key_id: str, obj: JsonDict, wanted: Policy, *, trim: bool = False) -> JsonDict:
        """Write the rotation period and version bounds of `wanted` (with `trim`, its trimming
        bound) into the KmsKey's spec and wait until the operator puts them in force
        (`status.policy`); a refusal by the operator (Degraded/PolicyRefused for this
        generation) is a 400 with its message."""
        ns, name = _name(obj)
        if trim:
            spec: JsonDict = {"minAvailableVersion": wanted.min_available_version}
        else:
            spec = {
                "rotationPeriod": format_duration(wanted.rotation_period) if wanted.rotation_period else None,
                "minDecryptionVersion": wanted.min_decryption_version,
                "minEncryptionVersion": wanted.min_encryption_version,
            }
        stamp = {kk.UPDATED_ANNOTATION: kk.iso(datetime.now(UTC))}
        patch = {"metadata": {"annotations": stamp}, "spec": spec}
        patched = await self._patch(key_id, ns, name, patch)
        generation = (patched.get("metadata") or {}).get("generation") or 0

        def settled(o: JsonDict) -> bool:
            st = o.get("status") or {}
            seen = isinstance(st.get("observedGeneration"), int) and st["observedGeneration"] >= generation
            return seen and (Policy.of_status(st) == wanted or _refusal(o) is not None)

        uid = (obj.get("metadata") or {}).get("uid")
        done = await self._wait(ns, name, uid, settled, "to apply the key's new policy")
        refusal = _refusal(done)
        if Policy.of_status(done.get("status")) != wanted and refusal is not None:
            raise BadRequest(refusal)
        return done

    async def _patch(self, key_id: str, ns: str, name: str, patch: JsonDict) -> JsonDict:
        try:
            patched = await call(self.client.merge_patch(kk.kmskeys_path(ns, name), patch))
        except ApiError as exc:
            if exc.status == 404:
                raise NotFound(f"Key with ID {key_id} not found") from None
            raise BadRequest(f"The Kubernetes API rejected the change: {exc.message}") from None
        self.keys.put(patched)
        return patched

    async def _wait(
        self, ns: str, name: str, uid: str | None, done: Callable[[JsonDict], bool], what: str
    ) -> JsonDict:
        def probe() -> JsonDict | None:
            obj = self.keys.get(ns, name)
            same = obj is not None and (uid is None or (obj.get("metadata") or {}).get("uid") in (uid, None))
            return obj if obj is not None and same and done(obj) else None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                return await self.keys.wait_for(probe, min(remaining, POLL_WHILE_WATCH_DOWN))
            except TimeoutError:
                if not self.keys.healthy:
                    # The watch is reconnecting: look at the object directly rather than wait blind.
                    with contextlib.suppress(Unavailable, ApiError):
                        await call(self.keys.read_through(ns, name))
        raise Timeout(
            f"Timed out after {self.ready_timeout:g}s waiting for the KubeKMS operator {what} "
            f"(KmsKey {ns}/{name}). The request was recorded; check that the operator is running "
            "and retry the read later."
        )


def _derivation(obj: JsonDict) -> tuple[bool, bool]:
    """(derived, convergentEncryption) of a KmsKey as the API server stored it."""
    spec = obj.get("spec") or {}
    return spec.get("derived") is True, spec.get("convergentEncryption") is True


def _refusal(obj: JsonDict) -> str | None:
    """The operator's message when it refused the spec's policy (Degraded/PolicyRefused)."""
    cond = kk.condition(obj, "Degraded")
    if cond and cond.get("status") == "True" and cond.get("reason") == "PolicyRefused":
        return str(cond.get("message") or "The key's new policy was refused")
    return None
