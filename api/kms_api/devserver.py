"""`make run`: a local KubeKMS on 127.0.0.1 with an embedded store in `.kubekms/`, ready to curl.

Creates the data dir, its development root key (unless ROOT_ENCRYPTION_KEY or an HSM is
configured) and admin token, prints the URL, the token and a copy-paste example, then serves in
the foreground until Ctrl-C. Every KUBEKMS_* variable is honoured.
Security property: for development only — the root key sits next to the data it seals; the
printed admin token is the one in `.kubekms/admin-token` (mode 0600).
"""

from __future__ import annotations

import os
import sys
import tempfile

from kms_api.settings import Settings, load_settings
from kms_core.errors import ConfigError, SealerMismatch
from kms_core.lifecycle import format_duration


def banner(settings: Settings, token: str) -> str:
    url = f"http://{settings.host}:{settings.port}"
    auth = f'-H "Authorization: Bearer {token}"'
    create = (
        f"KEY_ID=$(curl -s {url}/api/v1/kms/keys {auth} -H 'Content-Type: application/json' \\\n"
        '    -d \'{"projectId": "default", "name": "my-key"}\' | python3 -c \'import json,sys; '
        'print(json.load(sys.stdin)["key"]["id"])\')'
    )
    encrypt = (
        f"curl -s {url}/api/v1/kms/keys/$KEY_ID/encrypt {auth} -H 'Content-Type: application/json' \\\n"
        '    -d \'{"plaintext": "aGVsbG8="}\'   # base64 of "hello"'
    )
    window = settings.deletion_window
    deletion = (
        f"Deleted keys stay restorable for {format_duration(window)} (KUBEKMS_DELETION_WINDOW)"
        if window > 0 else "Deleted keys are destroyed at once (KUBEKMS_DELETION_WINDOW=0)"
    )
    return (
        f"\nKubeKMS is running at {url}   (data: {settings.data_dir}/, metrics: "
        f"http://{settings.host}:{settings.metrics_port}/metrics, API docs: {url}/openapi.json)\n"
        f"Admin token: {token}\n{deletion}; scheduled rotations are checked every "
        f"{settings.lifecycle_interval:g}s.\n\nTry it:\n  {create}\n  {encrypt}\n\n{limits(settings)}\n"
        "Press Ctrl-C to stop.\n"
    )


def limits(settings: Settings) -> str:
    """What the abuse limits refuse, and the variables that change them (shown in the banner so a
    user measuring the server knows what could answer 429 or 503)."""
    if settings.rate_limit_rps > 0:
        traffic = (
            f"{settings.rate_limit_rps:,.0f} requests/s per identity, login per client address "
            f"(burst {settings.rate_limit_burst:,}); "
            "KUBEKMS_RATE_LIMIT_RPS / _BURST change it, 0 turns it off"
        )
    else:
        traffic = "off (KUBEKMS_RATE_LIMIT_RPS=0)"
    if settings.auth_fail_rate > 0:
        failed = (
            f"{settings.auth_fail_burst} per client address, one back every "
            f"{1 / settings.auth_fail_rate:g} s (KUBEKMS_AUTH_FAIL_BURST, KUBEKMS_AUTH_FAIL_RATE)"
        )
    else:
        failed = "off (KUBEKMS_AUTH_FAIL_RATE=0)"
    return (
        "Limits (per process; 429 RateLimitExceeded / 503 beyond them):\n"
        f"  traffic: {traffic}\n"
        f"  failed authentications and logins: {failed}\n"
        f"  requests in flight: {settings.max_concurrency or 'unbounded'} (KUBEKMS_MAX_CONCURRENCY)\n"
    )


def main() -> int:
    try:
        settings = load_settings([])
    except ConfigError as exc:
        print(f"devserver: {exc}", file=sys.stderr)
        return 2
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kubekms-metrics-")
    from kms_api.http import server
    from kms_api.observe.logs import configure_logging
    from kms_core.sealing.factory import from_env

    configure_logging(settings.log_level)
    try:
        if not settings.env.get("HSM_LIB_PATH"):
            # Generates `.kubekms/root.key` on first run; an HSM is opened by the server itself
            # (never before forking workers).
            from_env(settings.env, settings.data_dir).close()
        token = server.prepare_data_dir(settings, announce=False)
    except (ConfigError, SealerMismatch, OSError) as exc:
        print(f"devserver: {exc}", file=sys.stderr)
        return 2
    print(banner(settings, token or ""), file=sys.stderr, flush=True)
    if settings.workers > 1:
        return server.supervise(settings)
    return server.run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
