"""Kopf configuration (the one @kopf.on.startup), credentials (@kopf.on.login) and cleanup.

Startup also starts the watch on the material Secrets (`secretwatch`), a plain background task
rather than a Kopf resource handler: the operator may only read Secrets in its own namespace.

Security property: the bearer token goes from the kubeconfig / ServiceAccount straight into Kopf's
connection info and is never logged; the sealer (built before Kopf starts) is only described by
backend and kek_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from kms_core.sealing.factory import describe
from kms_operator import credentials
from kms_operator.secretwatch import SecretWatch
from kms_operator.settings import FINALIZER, KOPF_PREFIX


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    runtime = memo["runtime"]
    # Kopf's bookkeeping: our finalizer, and annotations under operator.kubekms.io (not
    # status.kopf, which the CRD's structural schema would prune).
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "kubekms-operator"
    settings.posting.level = logging.INFO
    # Bounded waits everywhere: a hung API server must not hang the operator.
    settings.networking.request_timeout = runtime.settings.request_timeout
    settings.networking.connect_timeout = 10
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.execution.max_workers = 4
    # Material creation is guarded by create-if-absent and resourceVersion tests, not by peering.
    settings.peering.standalone = True
    if "secret_watch" not in memo:  # once, even if Kopf retries this handler
        memo["secret_watch"] = asyncio.get_running_loop().create_task(
            SecretWatch(runtime).run(), name="kubekms-secret-watch"
        )
    logger.info(
        "KubeKMS operator ready: %s; key material Secrets in namespace %s",
        describe(runtime.sealer),
        runtime.settings.namespace,
    )


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    conn = credentials.load()
    return kopf.ConnectionInfo(
        server=conn.server,
        token=conn.token,
        scheme=conn.scheme,
        ca_path=conn.ca_path,
        insecure=conn.insecure,
        certificate_path=conn.certificate_path,
        private_key_path=conn.private_key_path,
        default_namespace=conn.default_namespace,
    )


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    watch: asyncio.Task[None] | None = memo.get("secret_watch")
    if watch is not None:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    await memo["runtime"].api.close()
