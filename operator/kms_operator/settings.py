"""The operator's configuration, read once from the environment.

Security property: holds names and intervals only; the sealing configuration (ROOT_ENCRYPTION_KEY,
HSM_*) is read by `kms_core.sealing.factory.from_env` and never copied here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kms_core.errors import BadRequest, ConfigError
from kms_core.lifecycle import parse_duration

FINALIZER = "kubekms.io/finalizer"
DEFAULT_NAMESPACE = "kubekms-system"
DEFAULT_CHECK_INTERVAL = 300.0
DEFAULT_DELETION_WINDOW = 7 * 86400


@dataclass(frozen=True, slots=True)
class Settings:
    namespace: str  # where the key material Secrets live (KUBEKMS_NAMESPACE)
    # The safety-net re-check of every key (KUBEKMS_CHECK_INTERVAL, default 300 s); Secret changes
    # are noticed at once by the Secret watch, so this only bounds how long a missed event lasts.
    check_interval: float
    watch_namespaces: tuple[str, ...]  # empty: cluster-wide (KUBEKMS_WATCH_NAMESPACES)
    liveness: str | None  # e.g. http://[::]:8081/healthz (KUBEKMS_LIVENESS; `::` is dual-stack)
    log_level: str
    request_timeout: float
    # Backoff base for retried API errors (KUBEKMS_RETRY_DELAY, default 2 s; doubled per retry,
    # capped at 60 s) and the attempts a refused write gets per desire (KUBEKMS_REJECTED_ATTEMPTS,
    # default 5; see `rejections`).
    retry_delay: float = 2.0
    rejected_attempts: int = 5
    # How long the material of a KmsKey deleted with deletionPolicy Delete stays restorable
    # (KUBEKMS_DELETION_WINDOW: seconds or a duration such as 7d; default 7 days; 0 = delete the
    # Secret at once, as before recoverable deletion).
    deletion_window: int = DEFAULT_DELETION_WINDOW

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        in_pod = bool(env.get("KUBERNETES_SERVICE_HOST"))
        try:
            interval = float(env.get("KUBEKMS_CHECK_INTERVAL", str(DEFAULT_CHECK_INTERVAL)))
            timeout = float(env.get("KUBEKMS_REQUEST_TIMEOUT", "30"))
            retry_delay = float(env.get("KUBEKMS_RETRY_DELAY", "2"))
            attempts = int(env.get("KUBEKMS_REJECTED_ATTEMPTS", "5"))
        except ValueError as e:
            raise ConfigError(
                "KUBEKMS_CHECK_INTERVAL, KUBEKMS_REQUEST_TIMEOUT, KUBEKMS_RETRY_DELAY and "
                f"KUBEKMS_REJECTED_ATTEMPTS must be numbers: {e}"
            ) from e
        if interval <= 0 or timeout <= 0 or retry_delay <= 0 or attempts < 1:
            raise ConfigError(
                "KUBEKMS_CHECK_INTERVAL, KUBEKMS_REQUEST_TIMEOUT and KUBEKMS_RETRY_DELAY must be "
                "positive and KUBEKMS_REJECTED_ATTEMPTS at least 1"
            )
        try:
            window = parse_duration(env.get("KUBEKMS_DELETION_WINDOW", "") or str(DEFAULT_DELETION_WINDOW))
        except BadRequest as e:
            raise ConfigError(f"KUBEKMS_DELETION_WINDOW: {e}") from e
        liveness = env.get("KUBEKMS_LIVENESS", "http://[::]:8081/healthz" if in_pod else "") or None
        watched = tuple(ns.strip() for ns in env.get("KUBEKMS_WATCH_NAMESPACES", "").split(",") if ns.strip())
        return cls(
            namespace=env.get("KUBEKMS_NAMESPACE", DEFAULT_NAMESPACE),
            check_interval=interval,
            watch_namespaces=watched,
            liveness=liveness,
            log_level=env.get("KUBEKMS_LOG_LEVEL", "INFO").upper(),
            request_timeout=timeout,
            retry_delay=retry_delay,
            rejected_attempts=attempts,
            deletion_window=window,
        )
