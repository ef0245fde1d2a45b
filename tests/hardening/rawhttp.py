"""HTTP/1.1 over a plain socket: exact bytes out (no client normalisation), a parsed reply back.

The hostile-input corpus needs requests no well-behaved client would send (invalid UTF-8, broken
chunking, header floods, `..` and `%2f` in paths), so it writes them byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def build(
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
    token: str | None = None,
    content_type: str | None = "application/json",
) -> bytes:
    """One request with Connection: close; Content-Length is added for a body unless given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    given = {k.lower() for k, _ in headers or []}
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None and content_type is not None and "content-type" not in given:
        lines.append(f"Content-Type: {content_type}")
    if body is not None and "content-length" not in given and "transfer-encoding" not in given:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers or []]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    return head + (body or b"")


def _parse(data: bytes) -> RawReply:
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    return RawReply(int(status_line.split()[1]), headers, rest)


def send(port: int, request: bytes, *, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> RawReply:
    """Send `request` and read until the server closes the connection."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        sock: socket.socket = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        # The server may answer and close before reading everything (e.g. 413, 431).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    reply = _parse(b"".join(chunks))
    reply.elapsed = time.monotonic() - started
    return reply


def assert_error_shape(reply: RawReply, context: str = "", *, allow_503: bool = False) -> dict[str, Any]:
    """A 4xx answer (or 503 when allowed) in the spec's shape {reqId, statusCode, message, error},
    the reqId echoed in a header."""
    where = f"{context}: {reply.status} {reply.body[:300]!r}"
    assert 400 <= reply.status < 500 or (allow_503 and reply.status == 503), where
    assert reply.headers.get("content-type", "").startswith("application/json"), where
    body = reply.json()
    assert set(body) == {"reqId", "statusCode", "message", "error"}, where
    assert body["statusCode"] == reply.status, where
    assert isinstance(body["reqId"], str) and body["reqId"].startswith("req-"), where
    assert reply.headers.get("x-request-id") == body["reqId"], where
    assert isinstance(body["error"], str) and body["error"], where
    assert isinstance(body["message"], str | list), where
    return dict(body)
