"""Process settings from command-line flags and KUBEKMS_* environment variables (flags win).

Security property: the admin token is read from the environment only (never a flag, which would
show in `ps`), and `Settings.__repr__` hides it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kms_api.cors import parse_origins
from kms_core.errors import ConfigError

STORES = ("embedded", "kubernetes")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".kubekms")
    metrics_port: int = 9090
    tokens_file: Path | None = None
    workers: int = 1
    store: str = "embedded"
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    # Abuse limits (per process): token bucket per identity (0 rps = off), in-flight requests
    # (0 = unbounded), seconds a client has to send a request head and, separately, its body.
    rate_limit_rps: float = 2000.0
    rate_limit_burst: int = 4000
    # Failed authentications per client address (bad tokens, failed logins): a small bucket
    # refilled slowly, checked before any authentication work (0 per second = off).
    auth_fail_rate: float = 0.1
    auth_fail_burst: int = 10
    max_concurrency: int = 1024
    read_timeout: float = 15.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_reload_interval: float = 5.0
    # Browser origins allowed to call the API cross-origin (CORS with credentials); none = off.
    cors_origins: tuple[str, ...] = ()
    admin_token: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubekms-api", description="KubeKMS HTTP API (Infisical KMS compatible)"
    )
    parser.add_argument("--host", help="listen address (KUBEKMS_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (KUBEKMS_PORT, default 8080)")
    parser.add_argument("--data-dir", help="embedded store directory (KUBEKMS_DATA_DIR, default .kubekms)")
    parser.add_argument(
        "--metrics-port", type=int, help="Prometheus port, 0 disables (KUBEKMS_METRICS_PORT, 9090)"
    )
    parser.add_argument("--tokens-file", help="YAML tokens and machine identities (KUBEKMS_TOKENS_FILE)")
    parser.add_argument("--workers", type=int, help="processes sharing the port (KUBEKMS_WORKERS, default 1)")
    parser.add_argument("--store", choices=STORES, help="embedded | kubernetes (KUBEKMS_STORE)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="(KUBEKMS_LOG_LEVEL, default info)")
    parser.add_argument("--shutdown-timeout", type=float, help="seconds (KUBEKMS_SHUTDOWN_TIMEOUT, 30)")
    parser.add_argument(
        "--rate-limit-rps", type=float, help="requests/s per identity, 0 = off (KUBEKMS_RATE_LIMIT_RPS, 2000)"
    )
    parser.add_argument("--rate-limit-burst", type=int, help="bucket size (KUBEKMS_RATE_LIMIT_BURST, 4000)")
    parser.add_argument(
        "--auth-fail-rate",
        type=float,
        help="failed authentications/s refilled per client address, 0 = off (KUBEKMS_AUTH_FAIL_RATE, 0.1)",
    )
    parser.add_argument(
        "--auth-fail-burst", type=int, help="failed authentications per address (KUBEKMS_AUTH_FAIL_BURST, 10)"
    )
    parser.add_argument(
        "--max-concurrency", type=int, help="in-flight requests, 0 = no bound (KUBEKMS_MAX_CONCURRENCY, 1024)"
    )
    parser.add_argument(
        "--read-timeout", type=float, help="seconds to send a request head or body (KUBEKMS_READ_TIMEOUT, 15)"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain; enables HTTPS (KUBEKMS_TLS_CERT)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert (KUBEKMS_TLS_KEY)")
    parser.add_argument(
        "--cors-origins",
        help="comma-separated browser origins allowed cross-origin, e.g. https://app.example.com;"
        " off when empty (KUBEKMS_CORS_ORIGINS)",
    )
    return parser


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None


def _default_store(env: Mapping[str, str]) -> str:
    """Inside a pod the default store is the cluster's; elsewhere the embedded one."""
    return "kubernetes" if env.get("KUBERNETES_SERVICE_HOST") else "embedded"


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None


def load_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge flags over environment over defaults, and check ranges."""
    env = dict(os.environ if env is None else env)
    args = _parser().parse_args(argv)
    d = Settings()

    def pick(flag: object, var: str, default: str) -> str:
        return str(flag) if flag is not None else env.get(var) or default

    tokens = pick(args.tokens_file, "KUBEKMS_TOKENS_FILE", "")
    cert = pick(args.tls_cert, "KUBEKMS_TLS_CERT", "")
    key = pick(args.tls_key, "KUBEKMS_TLS_KEY", "")
    settings = Settings(
        host=pick(args.host, "KUBEKMS_HOST", d.host),
        port=_int(pick(args.port, "KUBEKMS_PORT", str(d.port)), "port"),
        data_dir=Path(pick(args.data_dir, "KUBEKMS_DATA_DIR", str(d.data_dir))),
        metrics_port=_int(
            pick(args.metrics_port, "KUBEKMS_METRICS_PORT", str(d.metrics_port)), "metrics port"
        ),
        tokens_file=Path(tokens) if tokens else None,
        workers=_int(pick(args.workers, "KUBEKMS_WORKERS", str(d.workers)), "workers"),
        store=pick(args.store, "KUBEKMS_STORE", _default_store(env)),
        log_level=pick(args.log_level, "KUBEKMS_LOG_LEVEL", d.log_level).lower(),
        shutdown_timeout=float(
            pick(args.shutdown_timeout, "KUBEKMS_SHUTDOWN_TIMEOUT", str(d.shutdown_timeout))
        ),
        rate_limit_rps=_float(
            pick(args.rate_limit_rps, "KUBEKMS_RATE_LIMIT_RPS", str(d.rate_limit_rps)), "rate limit"
        ),
        rate_limit_burst=_int(
            pick(args.rate_limit_burst, "KUBEKMS_RATE_LIMIT_BURST", str(d.rate_limit_burst)), "burst"
        ),
        auth_fail_rate=_float(
            pick(args.auth_fail_rate, "KUBEKMS_AUTH_FAIL_RATE", str(d.auth_fail_rate)), "auth fail rate"
        ),
        auth_fail_burst=_int(
            pick(args.auth_fail_burst, "KUBEKMS_AUTH_FAIL_BURST", str(d.auth_fail_burst)), "auth fail burst"
        ),
        max_concurrency=_int(
            pick(args.max_concurrency, "KUBEKMS_MAX_CONCURRENCY", str(d.max_concurrency)), "max concurrency"
        ),
        read_timeout=_float(
            pick(args.read_timeout, "KUBEKMS_READ_TIMEOUT", str(d.read_timeout)), "read timeout"
        ),
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        tls_reload_interval=_float(
            env.get("KUBEKMS_TLS_RELOAD_INTERVAL") or str(d.tls_reload_interval), "TLS reload interval"
        ),
        cors_origins=parse_origins(pick(args.cors_origins, "KUBEKMS_CORS_ORIGINS", "")),
        admin_token=env.get("KUBEKMS_ADMIN_TOKEN") or None,
        env=env,
    )
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
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    return settings
