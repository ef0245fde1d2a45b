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
import datetime
import logging
from typing import Any

import kopf

from kms_core.sealing.factory import describe
from kms_kube.config import TOKEN_REFRESH_SECONDS
from kms_kube.layout import KOPF_PREFIX
from kms_operator import liveness, purge
from kms_operator.secretwatch import SecretWatch
from kms_operator.settings import FINALIZER


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
    if runtime.settings.liveness and "liveness" not in memo:  # ours, not Kopf's: see `liveness`
        memo["liveness"] = await liveness.serve(runtime.settings.liveness)
    if "secret_watch" not in memo:  # once, even if Kopf retries this handler
        memo["secret_watch"] = asyncio.get_running_loop().create_task(
            SecretWatch(runtime).run(), name="kubekms-secret-watch"
        )
    if "purge" not in memo:
        memo["purge"] = asyncio.get_running_loop().create_task(purge.run(runtime), name="kubekms-purge")
    logger.info(
        "KubeKMS operator ready: %s; key material Secrets in namespace %s",
        describe(runtime.sealer),
        runtime.settings.namespace,
    )


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Kopf's credentials, from the same configuration as the operator's own client.

    Kopf calls this at start, when the credentials expire and after a 401. They expire after
    TOKEN_REFRESH_SECONDS, so Kopf re-reads a rotated projected token as often as `kms_kube` does.
    (Kopf's own `login_with_service_account` hard-codes the server name and token path, and its
    kubeconfig login ignores `tokenFile`: one loader for both clients keeps them in step.)
    """
    cfg = memo["runtime"].api.config
    cfg.refresh_token()
    cert, key = cfg.client_cert or (None, None)
    cert_data, key_data = cfg.client_cert_data or (None, None)
    return kopf.ConnectionInfo(
        server=cfg.server,
        token=cfg.bearer_token(),
        scheme="Bearer",
        ca_path=cfg.ca_file,
        ca_data=cfg.ca_data,
        insecure=cfg.insecure,
        certificate_path=cert,
        certificate_data=cert_data,
        private_key_path=key,
        private_key_data=key_data,
        default_namespace=cfg.namespace,
        expiration=datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=TOKEN_REFRESH_SECONDS),
    )


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    for task_name in ("secret_watch", "purge"):
        task: asyncio.Task[None] | None = memo.get(task_name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    runner = memo.get("liveness")
    if runner is not None:
        await runner.cleanup()
    await memo["runtime"].api.close()
