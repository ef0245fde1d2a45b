"""`kubekms-operator release-all`: uninstall KubeKMS for good, with nothing left waiting.

Every KmsKey carries the finalizer `kubekms.io/finalizer`, which only a running operator removes.
After `helm uninstall` no operator runs, so KmsKeys, their namespaces and the CRD could never be
deleted. This command (run by the chart's post-delete hook when `uninstall.releaseKeys` is set,
or by hand) removes that finalizer from every KmsKey and then treats all key material as asked:
- `--material keep` (the default): every material Secret is labelled orphaned and kept, so a
  later install (or `spec.keyId` restores in the same namespaces) can use it again;
- `--material delete`: every material Secret in the KubeKMS namespace is deleted — every key is
  destroyed for good, and ciphertexts made with them can never be decrypted again.
Other finalizers are left alone; a KmsKey changed meanwhile is re-read and retried.

Security property: nothing is unsealed; only finalizers, labels and (when asked) whole Secrets
change. It runs with the rights of whoever runs it (the hook's own, short-lived ServiceAccount).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
from dataclasses import dataclass

from kms_kube import layout
from kms_kube.client import Conflict, JsonDict, KubeClient, NotFound
from kms_operator.settings import FINALIZER

log = logging.getLogger("kubekms.operator")


@dataclass(frozen=True)
class Released:
    keys: int  # KmsKeys whose finalizer was removed
    secrets: int  # material Secrets orphaned (keep) or deleted (delete)


async def release_all(api: KubeClient, namespace: str, *, destroy: bool) -> Released:
    """Remove our finalizer from every KmsKey, then keep (orphaned) or delete all material."""
    keys, _ = await api.list_all(layout.kmskeys_path())
    released = 0
    for key in keys:
        if await _drop_finalizer(api, key):
            released += 1
    secrets, _ = await api.list_all(layout.secrets_path(namespace), {"labelSelector": layout.KEY_ID})
    now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for secret in secrets:
        path = layout.secrets_path(namespace, secret["metadata"]["name"])
        if destroy:
            await api.delete(path)
        elif layout.ORPHANED not in layout.labels_of(secret):
            await api.merge_patch(path, {"metadata": {"labels": {layout.ORPHANED: "true"},
                                                      "annotations": {layout.ORPHANED_AT: now}}})
    return Released(released, len(secrets))


async def _drop_finalizer(api: KubeClient, key: JsonDict, attempts: int = 5) -> bool:
    meta = key["metadata"]
    path = layout.kmskey_path(meta["namespace"], meta["name"])
    for _ in range(attempts):
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return False
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "replace", "path": "/metadata/finalizers",
             "value": [f for f in finalizers if f != FINALIZER]},
        ]
        try:
            await api.json_patch(path, ops)
            return True
        except Conflict:
            fresh = await api.get_or_none(path)
            if fresh is None:
                return False
            meta = fresh["metadata"]
        except NotFound:
            return False
    raise RuntimeError(f"KmsKey {meta['namespace']}/{meta['name']} kept changing; run release-all again")


def run(argv: list[str], api: KubeClient, namespace: str) -> int:
    """The `release-all` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="kubekms-operator release-all", description=__doc__.split("\n")[0])
    parser.add_argument("--material", choices=("keep", "delete"), default="keep",
                        help="keep every key's material (orphaned) or delete it for good")
    args = parser.parse_args(argv)

    async def go() -> Released:
        try:
            return await release_all(api, namespace, destroy=args.material == "delete")
        finally:
            await api.close()

    done = asyncio.run(go())
    verb = "deleted" if args.material == "delete" else "kept (orphaned)"
    log.info("Released %d KmsKeys; %d material Secrets %s", done.keys, done.secrets, verb)
    return 0
