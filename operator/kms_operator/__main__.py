"""`kubekms-operator`: configure, fail fast on bad configuration, then run Kopf — once this
replica leads (a Lease, see `leadership`), or at once with KUBEKMS_LEADER_ELECTION=false.

Exit status 2 on a configuration error (missing ROOT_ENCRYPTION_KEY / HSM_* variables, no
kubeconfig, an unusable root-key Secret), with a message naming the problem and never a secret
value; 1 when leadership is lost (the replica restarts as a standby). With
`KUBEKMS_ROOT_KEY_SECRET` and no key given, the root key is read from that Secret, or the Secret is
created first (`rootkey`), before Kopf starts: no handler ever runs without a sealer.
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
from kms_operator import clock, rootkey
from kms_operator.context import Runtime
from kms_operator.leadership import Leadership, LeaseConfig, run_when_leading
from kms_operator.settings import Settings


def main() -> None:
    try:
        settings = Settings.from_env()
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        clock.configure()
        api = KubeClient(load_config(), timeout=settings.request_timeout)
        if sys.argv[1:2] == ["release-all"]:  # uninstall for good (see `release`): no sealer needed
            from kms_operator import release

            sys.exit(release.run(sys.argv[2:], api, settings.namespace))
        env = rootkey.resolve(os.environ, api, settings.namespace)
        sealer = from_env(env)  # data_dir None: ROOT_ENCRYPTION_KEY or HSM_* are required
        del env
        lease = LeaseConfig.from_env(settings.namespace)
    except (ConfigError, OSError) as e:
        logging.getLogger("kubekms.operator").error("refusing to start: %s", e)
        sys.exit(2)
    from kms_operator import handlers, startup  # noqa: F401  (registers the Kopf handlers)

    # Kopf's own liveness endpoint would bind `::` IPv6-only: kms_operator.liveness serves it
    # (from the startup handler while leading, from `run_when_leading` while standing by).
    def operator(stop: asyncio.Event | None = None) -> Coroutine[Any, Any, None]:
        return kopf.operator(
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
            standalone=True,
            liveness_endpoint=None,
            stop_flag=stop,
            memo=kopf.Memo(runtime=Runtime(api=api, sealer=sealer, settings=settings)),
        )

    if not lease.enabled:
        kopf.run(
            clusterwide=not settings.watch_namespaces,
            namespaces=settings.watch_namespaces,
            standalone=True,
            liveness_endpoint=None,
            memo=kopf.Memo(runtime=Runtime(api=api, sealer=sealer, settings=settings)),
        )
        return
    asyncio.run(run_when_leading(Leadership(api, lease), operator, settings.liveness))


if __name__ == "__main__":
    main()
