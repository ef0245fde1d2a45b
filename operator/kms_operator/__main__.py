"""`kubekms-operator`: configure, fail fast on bad configuration, then run Kopf — once this
replica leads (a Lease, see `leadership`), or at once with KUBEKMS_LEADER_ELECTION=false.

Exit status 2 on a configuration error (missing ROOT_ENCRYPTION_KEY / HSM_* variables, no
kubeconfig), with a message naming the problem and never a secret value; 1 when leadership is
lost (the replica restarts as a standby).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any

import kopf

from kms_core.errors import ConfigError
from kms_core.sealing.factory import from_env
from kms_kube.client import KubeClient
from kms_kube.config import load_config
from kms_operator.leadership import Leadership, LeaseConfig, run_when_leading
from kms_operator.runtime import Runtime
from kms_operator.settings import Settings


def main() -> None:
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        sealer = from_env(os.environ)  # data_dir None: ROOT_ENCRYPTION_KEY or HSM_* are required
        api = KubeClient(load_config(), timeout=settings.request_timeout)
        lease = LeaseConfig.from_env(settings.namespace)
    except (ConfigError, OSError) as e:
        logging.getLogger("kubekms.operator").error("refusing to start: %s", e)
        sys.exit(2)
    from kms_operator import handlers, startup  # noqa: F401  (registers the Kopf handlers)

    def operator(stop: asyncio.Event | None = None) -> Coroutine[Any, Any, None]:
        return kopf.operator(
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
            standalone=True,
            liveness_endpoint=settings.liveness,
            stop_flag=stop,
            memo=kopf.Memo(runtime=Runtime(api=api, sealer=sealer, settings=settings)),
        )

    if not lease.enabled:
        kopf.run(
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
            standalone=True,
            liveness_endpoint=settings.liveness,
            memo=kopf.Memo(runtime=Runtime(api=api, sealer=sealer, settings=settings)),
        )
        return
    asyncio.run(run_when_leading(Leadership(api, lease), operator, settings.liveness))


if __name__ == "__main__":
    main()
