"""Abuse limits on a real process: rate limit, bounded concurrency, slow clients, TLS with reload."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fixtures.api import ADMIN, OPERATOR, ApiProcess
from fixtures.hardening import start_hardened
from hardening.rawhttp import assert_error_shape, build, send
from kms_api.http.limits import RateLimiter
from kms_core.errors import RateLimited
from kube.tls import ServerCert

K = "/api/v1/kms/keys"


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rps=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("a", "identity")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a", "identity")
    assert refused.value.retry_after == pytest.approx(0.5)
    limiter.check("b", "identity")  # buckets are per subject
    now[0] = 0.5
    limiter.check("a", "identity")
    with pytest.raises(RateLimited):
        limiter.check("a", "identity")
    assert RateLimiter(rps=0, burst=1).enabled is False


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> ApiProcess:
    root = tmp_path_factory.mktemp("limited")
    handle = start_hardened(
        root,
        "--rate-limit-rps",
        "1",
        "--rate-limit-burst",
        "5",
        "--max-concurrency",
        "2",
        "--read-timeout",
        "1",
    )
    yield handle  # type: ignore[misc]
    handle.stop()


def _metric(handle: ApiProcess, name: str) -> float:
    port = int(handle.proc.args[handle.proc.args.index("--metrics-port") + 1])  # type: ignore[union-attr]
    text = send(port, build("GET", "/metrics")).body.decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_rate_limit_per_identity_with_retry_after(limited: ApiProcess) -> None:
    path = f"{K}?projectId=proj"
    statuses = [send(limited.port, build("GET", path, token=ADMIN)).status for _ in range(5)]
    assert statuses == [200] * 5
    refused = send(limited.port, build("GET", path, token=ADMIN))
    body = assert_error_shape(refused, "rate limited")
    assert refused.status == 429 and body["error"] == "RateLimitExceeded"
    assert int(refused.headers["retry-after"]) >= 1
    # Another identity has its own bucket.
    assert send(limited.port, build("POST", f"{K}/bulk-import", body=b"{}", token=OPERATOR)).status == 422
    assert _metric(limited, 'kubekms_rate_limited_total{scope="identity"}') >= 1


def test_failed_authentications_have_their_own_small_budget(tmp_path: Path) -> None:
    """Token guessing spends the address's failed-authentication budget (--auth-fail-burst), far
    below the traffic limit; once spent, 429 replaces 403 and even valid tokens wait."""
    handle = start_hardened(tmp_path, "--auth-fail-burst", "3", "--auth-fail-rate", "0.01")
    try:
        path = f"{K}?projectId=proj"
        assert send(handle.port, build("GET", path, token=ADMIN)).status == 200
        guesses = [send(handle.port, build("GET", path, token=f"guess-{i}")).status for i in range(5)]
        assert guesses == [403, 403, 403, 429, 429]
        refused = send(handle.port, build("GET", path, token=ADMIN))
        body = assert_error_shape(refused, "failed-authentication budget")
        assert refused.status == 429 and body["error"] == "RateLimitExceeded"
        assert int(refused.headers["retry-after"]) >= 1
        assert _metric(handle, 'kubekms_rate_limited_total{scope="auth"}') == 3
    finally:
        handle.stop()


def test_saturated_process_answers_503_and_health_stays_up(limited: ApiProcess) -> None:
    # Two requests stuck sending their bodies occupy both slots of --max-concurrency 2.
    time.sleep(2.5)  # let the admin bucket of the previous test refill a little
    stuck = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", limited.port))
        sock.sendall(build("POST", f"{K}/bulk-import", token=ADMIN, headers=[("Content-Length", "100"),
                           ("Content-Type", "application/json")]) + b'{"projectId"')  # fmt: skip
        stuck.append(sock)
    try:
        time.sleep(0.3)
        refused = send(limited.port, build("GET", f"{K}?projectId=proj", token=OPERATOR))
        body = assert_error_shape(refused, "saturated", allow_503=True)
        assert refused.status == 503 and body["error"] == "ServiceUnavailable"
        assert refused.headers["retry-after"] == "1"
        assert send(limited.port, build("GET", "/healthz")).status == 200
        # The stuck bodies hit the read timeout (1 s): 408, and the slots are free again.
        for sock in stuck:
            sock.settimeout(5)
            assert b" 408 " in sock.recv(4096).split(b"\r\n")[0]
    finally:
        for sock in stuck:
            sock.close()
    assert send(limited.port, build("GET", f"{K}?projectId=proj", token=OPERATOR)).status == 403


def test_slow_loris_headers_are_cut_off(limited: ApiProcess) -> None:
    """The head has a deadline (1 s here), not just an idle timeout: steady progress that never
    ends the head is still cut off at the deadline. The client stops sending at 0.8 s, so an idle
    timeout would answer no sooner than 1.8 s; and it stops before the deadline so that its own
    writes never race the server's close (a write after the close draws a reset that can discard
    the 408 before it is read)."""
    sock = socket.create_connection(("127.0.0.1", limited.port))
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    answer = b""
    try:
        while time.monotonic() - started < 0.8:
            sock.sendall(b"X-Slow: 1\r\n")  # progress, but never the end of the head
            time.sleep(0.1)
        sock.settimeout(5)
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
            if b'"RequestTimeout"' in answer:
                break
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert elapsed < 1.7, elapsed
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"error":"RequestTimeout"' in answer


def test_idle_connection_without_a_request_is_closed(limited: ApiProcess) -> None:
    with socket.create_connection(("127.0.0.1", limited.port)) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        data = sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 4
        assert sock.recv(4096) == b""


# ----------------------------------------------------------------------------- TLS


def _self_signed(directory: Path, common_name: str) -> tuple[Path, Path]:
    cert = ServerCert.create(directory, common_name=common_name, stem=common_name)
    return cert.cert_file, cert.key_file


def _served_common_name(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(build("GET", "/healthz"))
        assert b"200 OK" in tls.recv(4096)
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _wait_for(predicate: object, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_tls_serving_and_certificate_reload(tmp_path: Path) -> None:
    first_cert, first_key = _self_signed(tmp_path, "first")
    second_cert, second_key = _self_signed(tmp_path, "second")
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    live_cert.write_bytes(first_cert.read_bytes())
    live_key.write_bytes(first_key.read_bytes())
    handle = start_hardened(
        tmp_path,
        "--tls-cert",
        str(live_cert),
        "--tls-key",
        str(live_key),
        env={"KUBEKMS_TLS_RELOAD_INTERVAL": "0.2"},
    )
    try:
        assert _served_common_name(handle.port) == "first"
        # Plain HTTP on the TLS port gets no API answer.
        plain = socket.create_connection(("127.0.0.1", handle.port), timeout=5)
        plain.sendall(build("GET", "/healthz"))
        assert b'"status":"ok"' not in plain.recv(4096)
        plain.close()
        # Rotation by file change (mtime polling).
        live_key.write_bytes(second_key.read_bytes())
        live_cert.write_bytes(second_cert.read_bytes())
        assert _wait_for(lambda: _served_common_name(handle.port) == "second")
        # A broken pair is refused; the current certificate stays in service.
        live_cert.write_bytes(b"not a certificate")
        time.sleep(0.6)
        assert _served_common_name(handle.port) == "second"
        # Rotation by SIGHUP.
        live_cert.write_bytes(first_cert.read_bytes())
        live_key.write_bytes(first_key.read_bytes())
        handle.proc.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _served_common_name(handle.port) == "first")
        assert "TLS certificate reload failed" in handle.logs()
        assert first_key.read_text() not in handle.logs()
    finally:
        assert handle.stop() == 0, handle.logs()
