"""Kopf registrations for KmsKeys; every handler delegates to `kms_operator.reconcile`.

The timer is a safety net, not the detector: Secret deletions and changes are noticed at once by
the Secret watch (`secretwatch`, started at startup). `idle` keeps it away from keys that changed
within the last interval (still being created or updated), whose own handlers just converged them.
"""

from __future__ import annotations

from typing import Any

import kopf

from kms_kube.layout import GROUP, PLURAL, VERSION
from kms_operator import deletion, reconcile
from kms_operator.settings import Settings

KMSKEYS = (GROUP, VERSION, PLURAL)
CHECK_INTERVAL = Settings.from_env().check_interval


@kopf.on.create(*KMSKEYS)
async def create_key(
    namespace: str | None, name: str, memo: kopf.Memo, logger: Any, retry: int, **_: Any
) -> None:
    await reconcile.converge(memo["runtime"], namespace, name, logger, retry)


@kopf.on.resume(*KMSKEYS)
async def resume_key(
    namespace: str | None, name: str, memo: kopf.Memo, logger: Any, retry: int, **_: Any
) -> None:
    await reconcile.converge(memo["runtime"], namespace, name, logger, retry)


@kopf.on.update(*KMSKEYS)
async def update_key(
    namespace: str | None, name: str, memo: kopf.Memo, logger: Any, retry: int, **_: Any
) -> None:
    await reconcile.converge(memo["runtime"], namespace, name, logger, retry)


@kopf.timer(*KMSKEYS, interval=CHECK_INTERVAL, initial_delay=CHECK_INTERVAL, idle=CHECK_INTERVAL)
async def check_key(namespace: str | None, name: str, memo: kopf.Memo, logger: Any, **kw: Any) -> None:
    # Kopf passes `retry` to timers too, but its TimerFn protocol does not declare it.
    await reconcile.converge(memo["runtime"], namespace, name, logger, int(kw.get("retry", 0)))


@kopf.on.delete(*KMSKEYS)
async def delete_key(
    namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, logger: Any, retry: int, **_: Any
) -> None:
    await deletion.release(memo["runtime"], namespace, name, dict(body), logger, retry)
