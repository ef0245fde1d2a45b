"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.

Several operator replicas run; only the holder of the Lease (`kubekms-operator` in the KubeKMS
namespace) runs Kopf and the Secret watch. The others stand by, answer the liveness probe, and
poll the Lease every `renew` seconds; when it has not been renewed for `duration` seconds,
measured on their own clock from the moment they saw it change (clock skew between nodes does
not matter), one of them takes it over with an update guarded by the Lease's resourceVersion:
of two candidates, exactly one wins (the other gets 409 and keeps standing by).

Why a Lease in front of `kopf.operator(...)` rather than Kopf's peering: peering needs its own
cluster-wide CRD, only *pauses* lower-priority operators (equal priorities all keep running, with
a warning), and keeps every replica's watches open; a Lease is what platform teams expect to see
(`kubectl get lease`), needs one namespaced Role rule, and leaves a standby doing nothing but
one GET every few seconds. Kopf is started only once the Lease is held, so handlers, timers,
finalizers and the Secret watch exist in one process at a time.

Losing the Lease (another holder, or no successful renewal for `duration - renew` seconds, before
a standby may take over) ends the process at once, as controller-runtime does: the kubelet
restarts it as a standby. Writes a former leader had in flight are still safe: material is
created with create-if-absent and every Secret update is resourceVersion-guarded, so a brief
overlap can never give a key two materials. On SIGTERM (a rolling update) the leader stops Kopf
and releases the Lease (empty holder) so a standby takes over without waiting for expiry.

Security property: the Lease holds only the holder's identity (the Pod name) and timestamps.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web

from kms_core.errors import ConfigError
from kms_kube.client import Conflict, JsonDict, KubeClient, KubeError, NotFound
from kms_operator import liveness

log = logging.getLogger("kubekms.operator.leadership")

LEASE_NAME = "kubekms-operator"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """Where the Lease is and how it is held (KUBEKMS_LEADER_ELECTION, KUBEKMS_LEASE_*)."""

    enabled: bool
    namespace: str
    name: str
    identity: str  # POD_NAME from the downward API; else hostname + a random suffix
    duration: float  # leaseDurationSeconds: how long a silent holder keeps it (default 15)
    renew: float  # the holder renews, and standbys look, this often (default 5)

    @property
    def deadline(self) -> float:
        """The holder gives up when it could not renew for this long (client-go's renewDeadline):
        before any standby may take over."""
        return self.duration - self.renew

    @classmethod
    def from_env(cls, namespace: str, env: Mapping[str, str] | None = None) -> LeaseConfig:
        env = os.environ if env is None else env
        flag = env.get("KUBEKMS_LEADER_ELECTION", "true").strip().lower()
        if flag not in ("true", "false", "1", "0"):
            raise ConfigError("KUBEKMS_LEADER_ELECTION must be true or false")
        try:
            duration = float(env.get("KUBEKMS_LEASE_DURATION", "15"))
            renew = float(env.get("KUBEKMS_LEASE_RENEW", "5"))
        except ValueError as e:
            raise ConfigError(f"KUBEKMS_LEASE_DURATION / KUBEKMS_LEASE_RENEW must be numbers: {e}") from e
        if not 0 < renew < duration / 1.5:
            raise ConfigError("KUBEKMS_LEASE_RENEW must be positive and below 2/3 of KUBEKMS_LEASE_DURATION")
        identity = env.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        return cls(
            enabled=flag in ("true", "1"),
            namespace=namespace,
            name=env.get("KUBEKMS_LEASE_NAME", LEASE_NAME),
            identity=identity,
            duration=duration,
            renew=renew,
        )


class LostLeadership(Exception):
    """The Lease is held by another replica, or could not be renewed in time."""


def _micro_time(at: datetime.datetime) -> str:
    """A Kubernetes MicroTime."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leadership:
    """Acquire, keep and release the Lease. `clock` is monotonic seconds (tests may pass their own)."""

    def __init__(
        self, api: KubeClient, config: LeaseConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api = api
        self.config = config
        self.clock = clock
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{config.namespace}/leases"
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, resourceVersion)
        self._observed_at = 0.0
        self._renewed_at: float | None = None  # when this replica last renewed successfully
        self.transitions = 0

    @property
    def leading(self) -> bool:
        return self._renewed_at is not None

    async def acquire(self) -> None:
        """Return once this replica holds the Lease (standing by meanwhile)."""
        announced = False
        while True:
            try:
                if await self._try():
                    log.info(
                        "Acquired Lease %s/%s as %s",
                        self.config.namespace,
                        self.config.name,
                        self.config.identity,
                    )
                    return
            except KubeError as e:
                log.warning("Lease %s/%s: %s; retrying", self.config.namespace, self.config.name, e)
            if not announced:
                holder = (self._observed or ("",))[0]
                log.info(
                    "Standing by: Lease %s/%s is held by %s", self.config.namespace, self.config.name, holder
                )
                announced = True
            await asyncio.sleep(self.config.renew)

    async def keep(self) -> None:
        """Renew every `renew` seconds; raise LostLeadership when another replica holds the Lease
        or no renewal succeeded for `deadline` seconds. Never returns otherwise."""
        while True:
            await asyncio.sleep(self.config.renew)
            while True:
                try:
                    if await self._try():
                        break
                    raise LostLeadership(f"the Lease is now held by {(self._observed or ('',))[0]}")
                except KubeError as e:
                    assert self._renewed_at is not None
                    if self.clock() - self._renewed_at >= self.config.deadline:
                        raise LostLeadership(
                            f"could not renew the Lease for {self.config.deadline:.0f}s: {e}"
                        ) from e
                    log.warning("renewing the Lease failed: %s; retrying", e)
                    await asyncio.sleep(min(1.0, self.config.renew))

    async def release(self) -> None:
        """Hand the Lease back (empty holder) so a standby takes it now rather than at expiry."""
        if not self.leading:
            return
        self._renewed_at = None
        try:
            lease = await self.api.get(f"{self.path}/{self.config.name}")
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.config.identity:
                return
            now = _micro_time(datetime.datetime.now(datetime.UTC))
            lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": now}
            await self.api.request("PUT", f"{self.path}/{self.config.name}", body=lease)
            log.info("Released Lease %s/%s", self.config.namespace, self.config.name)
        except KubeError as e:  # it expires by itself
            log.warning("could not release the Lease: %s", e)

    async def _try(self) -> bool:
        """One round of client-go's tryAcquireOrRenew: True when this replica holds the Lease."""
        cfg, now = self.config, self.clock()
        try:
            lease = await self.api.get(f"{self.path}/{cfg.name}")
        except NotFound:
            return await self._create()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        observed = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if observed != self._observed:
            self._observed, self._observed_at = observed, now
        duration = float(spec.get("leaseDurationSeconds") or cfg.duration)
        if holder and holder != cfg.identity and now < self._observed_at + duration:
            self._renewed_at = None
            return False  # held by another replica that renewed within its lease duration
        stamp = _micro_time(datetime.datetime.now(datetime.UTC))
        new = dict(spec)
        if holder != cfg.identity:
            new["acquireTime"] = stamp
            new["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        new.update(holderIdentity=cfg.identity, leaseDurationSeconds=int(cfg.duration), renewTime=stamp)
        lease["spec"] = new
        try:
            stored = await self.api.request("PUT", f"{self.path}/{cfg.name}", body=lease)
        except Conflict:
            return False  # another candidate updated it first
        self._took(stored, now)
        return True

    async def _create(self) -> bool:
        cfg, now = self.config, self.clock()
        stamp = _micro_time(datetime.datetime.now(datetime.UTC))
        body: JsonDict = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": {
                "holderIdentity": cfg.identity,
                "leaseDurationSeconds": int(cfg.duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        try:
            stored = await self.api.create(self.path, body)
        except Conflict:
            return False  # created by another candidate meanwhile
        self._took(stored, now)
        return True

    def _took(self, lease: JsonDict, now: float) -> None:
        spec = lease.get("spec") or {}
        self._observed = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            lease["metadata"].get("resourceVersion"),
        )
        self._observed_at = self._renewed_at = now
        self.transitions = int(spec.get("leaseTransitions") or 0)


async def run_when_leading(
    leadership: Leadership, operator: Callable[[asyncio.Event], Awaitable[None]], liveness: str | None
) -> None:
    """Stand by (answering the liveness probe) until the Lease is held, then run `operator(stop)`
    while renewing it. Losing the Lease exits the process (status 1); a SIGTERM while standing by
    exits cleanly; when `operator` returns (SIGTERM while leading), the Lease is released."""
    loop = asyncio.get_running_loop()
    health = await _serve_liveness(liveness)
    acquiring = asyncio.ensure_future(leadership.acquire())
    for sig in (signal.SIGTERM, signal.SIGINT):  # Kopf installs its own once it runs
        loop.add_signal_handler(sig, acquiring.cancel)
    try:
        await acquiring
    except asyncio.CancelledError:
        log.info("Stopped while standing by")
        return
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if health is not None:
            await health.cleanup()  # Kopf serves the probe from now on, on the same port
    stop = asyncio.Event()
    keeper = asyncio.create_task(leadership.keep(), name="kubekms-lease")
    keeper.add_done_callback(_exit_when_lost)
    try:
        await operator(stop)
    finally:
        keeper.remove_done_callback(_exit_when_lost)
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await leadership.release()


def _exit_when_lost(keeper: asyncio.Task[None]) -> None:
    if keeper.cancelled():
        return
    log.error("Leadership lost: %s; exiting so that this replica restarts as a standby", keeper.exception())
    logging.shutdown()
    os._exit(1)  # at once: no handler of a former leader may keep running


async def _serve_liveness(url: str | None) -> aiohttp.web.AppRunner | None:
    """A standby's answer to the liveness probe (the leader's is served from Kopf's startup
    handler, on the same port, once this one is cleaned up); dual-stack like it (`liveness`)."""
    return await liveness.serve(url) if url else None
