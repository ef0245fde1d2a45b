"""Running the API process: one worker, or a supervisor with N workers sharing the port (SO_REUSEPORT).

Each worker runs uvloop, serves the API until SIGTERM/SIGINT, then stops accepting and lets
in-flight requests finish for up to `shutdown_timeout` seconds. Connections go through
`protocol.GuardedListener` (header limits, request-head deadline, JSON protocol errors); with
--tls-cert/--tls-key the port speaks HTTPS and SIGHUP (forwarded by the supervisor) reloads the
certificate. A SealerMismatch or ConfigError at
startup is logged and the process exits non-zero before anything is written.
Security property: the generated admin token is shown once, on the terminal that created it,
and never through the logging system.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys

import uvloop
from aiohttp import web

from kms_api.app import create_app
from kms_api.auth.secretfiles import ensure_secret_file
from kms_api.auth.tokens import admin_token
from kms_api.http.protocol import GuardedListener, api_runner
from kms_api.http.tls import CertReloader, server_tls
from kms_api.observe import metrics
from kms_api.observe.logs import ACCESS_LOG, AccessLogger, flush_logs
from kms_api.settings import Settings
from kms_core.errors import ConfigError, KmsError, SealerMismatch
from kms_core.listener import dual_stack_socket, is_any

log = logging.getLogger("kubekms.api")
EXIT_CONFIG = 2


def prepare_data_dir(settings: Settings, *, announce: bool = True) -> str | None:
    """Create embedded-mode secrets before any worker starts; print a newly generated admin token."""
    if settings.store != "embedded":
        return None
    token, created = admin_token(settings.data_dir, settings.admin_token)
    ensure_secret_file(settings.data_dir / "auth-secret", 48)
    if created and announce:
        print(
            f"KubeKMS generated an admin token (stored 0600 in {settings.data_dir / 'admin-token'}):\n"
            f"  {token}\nIt is shown only this once.",
            file=sys.stderr,
            flush=True,
        )
    return token


def _tls(settings: Settings) -> CertReloader | None:
    try:
        return server_tls(settings.tls_cert, settings.tls_key)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise ConfigError(f"cannot load --tls-cert/--tls-key: {exc.strerror or type(exc).__name__}") from None


def _site(
    runner: web.BaseRunner, host: str, port: int, reuse_port: bool, ssl_context: ssl.SSLContext | None
) -> web.BaseSite:
    """`::` listens on both families through one dual-stack socket (see kms_core.listener);
    any other host as aiohttp binds it."""
    if is_any(host):
        sock = dual_stack_socket(port, reuse_port=reuse_port)
        return web.SockSite(runner, sock, ssl_context=ssl_context)
    return web.TCPSite(runner, host, port, reuse_port=reuse_port or None, ssl_context=ssl_context)


async def _serve(settings: Settings, reuse_port: bool, serve_metrics: bool) -> None:
    tls = _tls(settings)
    runner = api_runner(
        create_app(settings),
        handle_signals=False,
        access_log_class=AccessLogger,
        access_log=ACCESS_LOG,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()  # builds sealer, store, service: SealerMismatch/ConfigError surface here
    metrics_runner: web.AppRunner | None = None
    watcher: asyncio.Task[None] | None = None
    listener = GuardedListener(runner, read_timeout=settings.read_timeout)
    try:
        await listener.start(
            settings.host,
            settings.port,
            reuse_port=reuse_port,
            ssl_context=tls.context if tls is not None else None,
        )
        port = listener.port
        if serve_metrics and settings.metrics_port:
            metrics_runner = web.AppRunner(metrics.metrics_app(), access_log=None)
            await metrics_runner.setup()
            await _site(metrics_runner, settings.host, settings.metrics_port, False, None).start()
        scheme = "https" if tls is not None else "http"
        log.info("listening", extra={"url": f"{scheme}://{settings.host}:{port}"})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if tls is not None:
            loop.add_signal_handler(signal.SIGHUP, tls.reload)
            watcher = asyncio.create_task(tls.watch(settings.tls_reload_interval))
        await stop.wait()
        log.info("shutting down", extra={"timeout_s": settings.shutdown_timeout})
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        listener.stop()
        await runner.cleanup()  # stops accepting, waits for in-flight requests, closes resources


def run_worker(settings: Settings, *, reuse_port: bool = False, serve_metrics: bool = True) -> int:
    """Serve until a stop signal; the process exit code."""
    try:
        uvloop.run(_serve(settings, reuse_port, serve_metrics))
        flush_logs()  # a forked worker leaves through os._exit, which skips logging's own flush
    except (SealerMismatch, ConfigError, KmsError) as exc:
        log.error("refusing to start", extra={"reason": str(exc), "kind": type(exc).__name__})
        return EXIT_CONFIG
    except OSError as exc:
        log.error("cannot listen", extra={"reason": exc.strerror, "port": settings.port})
        return 1
    return 0


def _reserve_port(settings: Settings) -> tuple[socket.socket, int]:
    """Resolve port 0 once so every worker binds the same port.

    The supervisor keeps this socket bound but never listens on it: the kernel balances
    connections only across the workers' listening sockets of the SO_REUSEPORT group."""
    if is_any(settings.host):
        sock = dual_stack_socket(settings.port, reuse_port=True, listen=False)
        return sock, sock.getsockname()[1]
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    return sock, sock.getsockname()[1]


def supervise(settings: Settings) -> int:
    """Fork `settings.workers` workers on one SO_REUSEPORT port; forward stop signals; serve metrics."""
    from dataclasses import replace

    from prometheus_client import start_http_server
    from prometheus_client.multiprocess import mark_process_dead

    reserved, port = _reserve_port(settings)
    settings = replace(settings, port=port)
    children: dict[int, int] = {}
    for index in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            reserved.close()
            os._exit(run_worker(settings, reuse_port=True, serve_metrics=False))
        children[pid] = index
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=metrics.metrics_registry())
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    def forward(signum: int, frame: object) -> None:
        for pid in children:
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, forward)  # TLS certificate reload in every worker
    log.info("supervising workers", extra={"workers": settings.workers, "port": port})
    code = 0
    while children:
        pid, status = os.wait()
        children.pop(pid, None)
        mark_process_dead(pid)  # type: ignore[no-untyped-call]
        child_code = os.waitstatus_to_exitcode(status)
        if not stopping:
            # One worker gone: stop the rest and let the orchestrator restart the process.
            code = child_code or 1
            stop(signal.SIGTERM, None)
    reserved.close()
    return code
