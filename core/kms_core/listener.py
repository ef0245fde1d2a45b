"""Listening sockets for the KubeKMS servers (the API, its metrics, the operator's liveness).

`::` (and the empty host) means every address of both families: one IPv6 socket with
IPV6_V6ONLY off, which also accepts IPv4 clients (as v4-mapped addresses), so the same default
works on IPv4, IPv6 single-stack and dual-stack clusters. asyncio's own `create_server` turns
IPV6_V6ONLY on for `::`, which would leave IPv4 kubelet probes and clients unanswered; hence
these sockets are made here and handed to the servers ready to accept. On a host without IPv6
(the kernel refuses AF_INET6) `::` falls back to IPv4's `0.0.0.0`.

Security property: none beyond binding exactly what was asked; no data passes through here.
"""

from __future__ import annotations

import errno
import socket

ANY_HOSTS = frozenset({"::", "", "[::]"})
_NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


def is_any(host: str | None) -> bool:
    """Whether `host` asks for every address of both families."""
    return host is None or host.strip() in ANY_HOSTS


def dual_stack_socket(
    port: int, *, reuse_port: bool = False, listen: bool = True, backlog: int = 1024
) -> socket.socket:
    """A listening, non-blocking TCP socket on every IPv6 and IPv4 address (`::`, V6ONLY off).
    `listen=False` only binds it (a port reserved for SO_REUSEPORT workers)."""
    try:
        sock = _bound(socket.AF_INET6, "::", port, reuse_port)
    except OSError as exc:
        if exc.errno not in _NO_IPV6:
            raise
        sock = _bound(socket.AF_INET, "0.0.0.0", port, reuse_port)  # noqa: S104 (all addresses, asked for)
    if listen:
        sock.listen(backlog)
        sock.setblocking(False)
    return sock


def _bound(family: socket.AddressFamily, host: str, port: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
