"""The API's settings: the one declaration of every `kubekms-api` flag and KUBEKMS_* variable.

Each field of `Settings` (and of `KubeSettings`, the Kubernetes-mode knobs at `Settings.kube`)
declares its flag, environment variable, parser and help in its metadata (`option(...)`);
`load_settings` builds the command line and reads the environment from those declarations only,
so a setting cannot be added, renamed or defaulted in one place and missed in another.
Precedence: flag, then variable (an empty one counts as unset), then the field's default.
`Settings.env` keeps the whole environment for what other layers declare themselves (the
sealer's ROOT_ENCRYPTION_KEY / HSM_* in `kms_core.sealing.factory`).

Security property: the admin token is read from the environment only (never a flag, which would
show in `ps`), and `Settings.__repr__` hides it and the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kms_api.http.cors import parse_origins
from kms_core import lifecycle
from kms_core.errors import BadRequest, ConfigError

STORES = ("embedded", "kubernetes")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Requests/s and bucket size per identity and process: far above what one worker serves.
DEFAULT_RATE_LIMIT_RPS = 100_000.0
DEFAULT_RATE_LIMIT_BURST = 200_000

# parse(text, name) -> value; `name` names the setting in the ConfigError of a bad value.
Parse = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class Option:
    """How one setting is given: flag (None: environment only), variable, parser, help."""

    flag: str | None
    env: str | None
    parse: Parse
    help: str
    name: str  # how errors name the setting
    choices: tuple[str, ...] | None = None
    # When neither flag nor variable is set: raw text from the environment, or None (the default).
    fallback: Callable[[Mapping[str, str]], str | None] | None = None


def option(
    flag: str | None, env: str | None, parse: Parse, help: str, *, name: str = "",
    choices: tuple[str, ...] | None = None,
    fallback: Callable[[Mapping[str, str]], str | None] | None = None,
) -> dict[str, Option]:
    """Field metadata declaring a setting (see the module docstring)."""
    label = name or (flag or env or "").lstrip("-").replace("-", " ")
    return {"option": Option(flag, env, parse, help, label, choices, fallback)}


# ---- parsers: text -> value, or a ConfigError naming the setting (never echoing a secret) --------
def _str(value: str, name: str) -> str:
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None


def _duration(value: str, name: str) -> int:
    """Seconds, or a duration such as 7d, 12h, 1h30m (kms_core.lifecycle.parse_duration)."""
    try:
        return lifecycle.parse_duration(value)
    except BadRequest:
        raise ConfigError(f"{name} must be seconds or a duration such as 7d, 12h or 1h30m") from None


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false")


def _path(value: str, name: str) -> Path:
    return Path(value)


def _lower(value: str, name: str) -> str:
    return value.lower()


def _origins(value: str, name: str) -> tuple[str, ...]:
    return parse_origins(value)


def _names(value: str, name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _first_path(value: str, name: str) -> str:
    """KUBECONFIG may list several files; like kubectl's default merge, the first one wins here."""
    return value.split(os.pathsep)[0]


def _default_store(env: Mapping[str, str]) -> str | None:
    """Inside a pod the default store is the cluster's; elsewhere the embedded one."""
    return "kubernetes" if env.get("KUBERNETES_SERVICE_HOST") else None


def _kubeconfig(env: Mapping[str, str]) -> str | None:
    # An explicit KUBECONFIG is used as given even in a pod (kms_kube.config.load_config).
    return env.get("KUBECONFIG") or None


@dataclass(frozen=True)
class KubeSettings:
    """The Kubernetes-mode knobs (`--store kubernetes`), read by `kms_api.modes.kubernetes`."""

    namespace: str | None = field(default=None, metadata=option(
        "--namespace", "KUBEKMS_NAMESPACE", _str,
        "KubeKMS namespace holding the material Secrets (default: the pod's, else kubekms-system)"))
    kubeconfig: str | None = field(default=None, metadata=option(
        "--kubeconfig", "KUBEKMS_KUBECONFIG", _first_path,
        "kubeconfig file outside a pod (else KUBECONFIG's first file, in-cluster, ~/.kube/config)",
        fallback=_kubeconfig))
    serviceaccount_dir: Path | None = field(default=None, metadata=option(
        None, "KUBEKMS_SERVICEACCOUNT_DIR", _path,
        "where the pod's ServiceAccount token, ca.crt and namespace are mounted, if not the standard path"))
    context: str | None = field(default=None, metadata=option(
        "--kube-context", "KUBEKMS_KUBE_CONTEXT", _str, "kubeconfig context (default: its current one)"))
    token_audiences: tuple[str, ...] = field(default=(), metadata=option(
        "--token-audience", "KUBEKMS_TOKEN_AUDIENCE", _names,
        "comma-separated audiences a ServiceAccount token must be issued for"))
    ready_timeout: float = field(default=30.0, metadata=option(
        "--kube-ready-timeout", "KUBEKMS_KUBE_READY_TIMEOUT", _float,
        "seconds a create or rotation waits for the operator (504 after)"))
    auth_cache_ttl: float = field(default=10.0, metadata=option(
        "--auth-cache-ttl", "KUBEKMS_AUTH_CACHE_TTL", _float,
        "seconds TokenReview and SubjectAccessReview decisions are reused"))
    request_timeout: float = field(default=10.0, metadata=option(
        "--kube-request-timeout", "KUBEKMS_KUBE_REQUEST_TIMEOUT", _float, "seconds per API-server call"))
    list_page_size: int = field(default=500, metadata=option(
        "--kube-list-page-size", "KUBEKMS_KUBE_LIST_PAGE_SIZE", _int,
        "objects per list request of the KmsKey and Secret caches, 0 = unpaginated",
        name="KUBEKMS_KUBE_LIST_PAGE_SIZE"))


@dataclass(frozen=True)
class Settings:
    host: str = field(default="127.0.0.1", metadata=option("--host", "KUBEKMS_HOST", _str, "listen address"))
    port: int = field(default=8080, metadata=option("--port", "KUBEKMS_PORT", _int, "listen port"))
    data_dir: Path = field(default=Path(".kubekms"), metadata=option(
        "--data-dir", "KUBEKMS_DATA_DIR", _path, "embedded store directory"))
    metrics_port: int = field(default=9090, metadata=option(
        "--metrics-port", "KUBEKMS_METRICS_PORT", _int, "Prometheus port, 0 disables"))
    tokens_file: Path | None = field(default=None, metadata=option(
        "--tokens-file", "KUBEKMS_TOKENS_FILE", _path, "YAML tokens and machine identities"))
    workers: int = field(default=1, metadata=option(
        "--workers", "KUBEKMS_WORKERS", _int, "processes sharing the port"))
    store: str = field(default="embedded", metadata=option(
        "--store", "KUBEKMS_STORE", _str, "key store; kubernetes by default inside a pod",
        choices=STORES, fallback=_default_store))
    log_level: str = field(default="info", metadata=option(
        "--log-level", "KUBEKMS_LOG_LEVEL", _lower, "log level", choices=LOG_LEVELS))
    shutdown_timeout: float = field(default=30.0, metadata=option(
        "--shutdown-timeout", "KUBEKMS_SHUTDOWN_TIMEOUT", _float, "seconds in-flight requests get"))
    # Abuse limits (per process): token bucket per identity (0 rps = off), in-flight requests
    # (0 = unbounded), seconds a client has to send a request head and, separately, its body.
    # The per-identity default sits above what one worker can serve (bare aiohttp tops out
    # near 25k req/s on a fast core), so a legitimate client is never throttled by default: it
    # only caps a runaway. Brute force is the failed-authentication budget's job, which is on.
    rate_limit_rps: float = field(default=DEFAULT_RATE_LIMIT_RPS, metadata=option(
        "--rate-limit-rps", "KUBEKMS_RATE_LIMIT_RPS", _float, "requests/s per identity, 0 = off",
        name="rate limit"))
    rate_limit_burst: int = field(default=DEFAULT_RATE_LIMIT_BURST, metadata=option(
        "--rate-limit-burst", "KUBEKMS_RATE_LIMIT_BURST", _int, "bucket size", name="burst"))
    # Failed authentications per client address (bad tokens, failed logins): a small bucket
    # refilled slowly, checked before any authentication work (0 per second = off).
    auth_fail_rate: float = field(default=0.1, metadata=option(
        "--auth-fail-rate", "KUBEKMS_AUTH_FAIL_RATE", _float,
        "failed authentications/s refilled per client address, 0 = off"))
    auth_fail_burst: int = field(default=10, metadata=option(
        "--auth-fail-burst", "KUBEKMS_AUTH_FAIL_BURST", _int, "failed authentications per address"))
    max_concurrency: int = field(default=1024, metadata=option(
        "--max-concurrency", "KUBEKMS_MAX_CONCURRENCY", _int, "in-flight requests, 0 = no bound"))
    read_timeout: float = field(default=15.0, metadata=option(
        "--read-timeout", "KUBEKMS_READ_TIMEOUT", _float, "seconds to send a request head or body"))
    tls_cert: Path | None = field(default=None, metadata=option(
        "--tls-cert", "KUBEKMS_TLS_CERT", _path, "PEM certificate chain; enables HTTPS"))
    tls_key: Path | None = field(default=None, metadata=option(
        "--tls-key", "KUBEKMS_TLS_KEY", _path, "PEM private key of --tls-cert"))
    tls_reload_interval: float = field(default=5.0, metadata=option(
        None, "KUBEKMS_TLS_RELOAD_INTERVAL", _float, "seconds between certificate file checks",
        name="TLS reload interval"))
    # Browser origins allowed to call the API cross-origin (CORS with credentials); none = off.
    cors_origins: tuple[str, ...] = field(default=(), metadata=option(
        "--cors-origins", "KUBEKMS_CORS_ORIGINS", _origins,
        "comma-separated browser origins allowed cross-origin, e.g. https://app.example.com; off when empty"))
    # Key lifecycle (embedded mode; kms_core.schedule): the recovery window of a deleted key and
    # the pause between passes of the scheduler that rotates due keys and purges expired ones.
    deletion_window: int = field(default=7 * 86400, metadata=option(
        "--deletion-window", "KUBEKMS_DELETION_WINDOW", _duration,
        "how long a deleted key stays restorable, in seconds or e.g. 7d, 12h; 0 destroys at once",
        name="deletion window"))
    lifecycle_interval: float = field(default=30.0, metadata=option(
        "--lifecycle-interval", "KUBEKMS_LIFECYCLE_INTERVAL", _float,
        "seconds between the lifecycle scheduler's passes (scheduled rotations, purges)",
        name="lifecycle interval"))
    # TEST ONLY (kms_api.testclock): shifts the lifecycle scheduler's clock so process-level
    # tests need not sleep through rotation periods. Ignored unless KUBEKMS_TEST_HOOKS is true.
    test_hooks: bool = field(default=False, metadata=option(
        None, "KUBEKMS_TEST_HOOKS", _flag, "TEST ONLY: honour the KUBEKMS_TEST_* variables",
        name="KUBEKMS_TEST_HOOKS"))
    test_clock_offset: str | None = field(default=None, metadata=option(
        None, "KUBEKMS_TEST_CLOCK_OFFSET", _str,
        "TEST ONLY: seconds added to the scheduler's clock, or @FILE holding them (re-read each pass)",
        name="KUBEKMS_TEST_CLOCK_OFFSET"))
    # Environment only: a flag would show the token in `ps`.
    admin_token: str | None = field(default=None, repr=False, metadata=option(
        None, "KUBEKMS_ADMIN_TOKEN", _str, "the admin token"))
    kube: KubeSettings = field(default_factory=KubeSettings)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


def options(cls: type[Any]) -> list[tuple[str, Option]]:
    """(field name, Option) of every declared setting of a settings dataclass, in order."""
    return [(f.name, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubekms-api", description="KubeKMS HTTP API (Infisical KMS compatible)"
    )
    for group, cls in ((parser, Settings), (parser.add_argument_group("Kubernetes mode"), KubeSettings)):
        default = cls()
        for attr, opt in options(cls):
            if opt.flag is None:
                continue
            value = getattr(default, attr)
            shown = ",".join(value) if isinstance(value, tuple) else value
            suffix = f", default {shown}" if shown not in (None, "", ()) else ""
            group.add_argument(
                opt.flag, dest=f"{cls.__name__}.{attr}", metavar=None if opt.choices else attr.upper(),
                choices=opt.choices,
                help=f"{opt.help} ({opt.env}{suffix})",
            )
    return parser


def _read(cls: type[Any], args: argparse.Namespace, environ: Mapping[str, str], **extra: Any) -> Any:
    """An instance of `cls` from flags over environment over defaults (parsers raise ConfigError)."""
    values: dict[str, Any] = {}
    for attr, opt in options(cls):
        text = getattr(args, f"{cls.__name__}.{attr}", None)
        if text is None and opt.env is not None:
            text = environ.get(opt.env) or None
        if text is None and opt.fallback is not None:
            text = opt.fallback(environ)
        if text is not None:
            values[attr] = opt.parse(text, opt.name)
    return cls(**values, **extra)


def load_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge flags over environment over defaults, and check ranges."""
    env = dict(os.environ if env is None else env)
    args = _parser().parse_args(argv)
    settings: Settings = _read(Settings, args, env, kube=_read(KubeSettings, args, env), env=env)
    check(settings)
    return settings


def check(settings: Settings) -> None:
    """Raise ConfigError for a value out of range (the message names the setting, not a secret)."""
    if settings.store not in STORES:
        raise ConfigError(f"store must be one of {', '.join(STORES)}")
    if settings.log_level not in LOG_LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    if not 0 <= settings.port <= 65535 or not 0 <= settings.metrics_port <= 65535:
        raise ConfigError("ports must be between 0 and 65535")
    if not 1 <= settings.workers <= 64:
        raise ConfigError("workers must be between 1 and 64")
    if settings.shutdown_timeout < 0:
        raise ConfigError("shutdown timeout must be >= 0")
    if settings.rate_limit_rps < 0 or settings.max_concurrency < 0:
        raise ConfigError("rate limit and max concurrency must be >= 0 (0 turns them off)")
    if settings.rate_limit_rps > 0 and settings.rate_limit_burst < 1:
        raise ConfigError("rate limit burst must be >= 1")
    if settings.auth_fail_rate < 0 or (settings.auth_fail_rate > 0 and settings.auth_fail_burst < 1):
        raise ConfigError("auth fail rate must be >= 0 (0 turns it off) and auth fail burst >= 1")
    if settings.read_timeout <= 0 or settings.tls_reload_interval <= 0:
        raise ConfigError("read timeout and TLS reload interval must be > 0")
    if not settings.lifecycle_interval > 0:
        raise ConfigError("lifecycle interval must be > 0")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    _check_kube(settings.kube)


def _check_kube(kube: KubeSettings) -> None:
    # Refused at startup rather than, e.g., silently listing everything in one request.
    if kube.list_page_size < 0:
        raise ConfigError(f"KUBEKMS_KUBE_LIST_PAGE_SIZE must be 0 or more, not {kube.list_page_size}")
    if kube.ready_timeout <= 0 or kube.request_timeout <= 0:
        raise ConfigError("kube ready timeout and kube request timeout must be > 0")
    if kube.auth_cache_ttl < 0:
        raise ConfigError("auth cache TTL must be >= 0")
