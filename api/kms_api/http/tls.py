"""Optional HTTPS: a server TLS context whose certificate reloads when its files change.

`--tls-cert`/`--tls-key` (KUBEKMS_TLS_CERT/KEY) enable TLS. The files are polled every
KUBEKMS_TLS_RELOAD_INTERVAL seconds (5) and reloaded on SIGHUP; new connections get the new
certificate, established ones keep theirs. A half-written pair (cert and key not matching yet)
is refused and the previous certificate stays in use until the next successful load.

Security property: TLS 1.2 or later only; the key file's content is never logged, and a failed
reload never leaves the server without a certificate.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger("kubekms.api")

Stamp = tuple[int, int, int, int]


class CertReloader:
    """Owns the server SSLContext and reloads its certificate chain when the files change."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp: Stamp | None = None
        self.reloads = 0
        # The first load must succeed: a process started with a broken pair refuses to start.
        self.context.load_cert_chain(self.cert, self.key)
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> Stamp | None:
        try:
            c, k = self.cert.stat(), self.key.stat()
        except OSError:
            return None
        return (c.st_mtime_ns, c.st_size, k.st_mtime_ns, k.st_size)

    def reload(self) -> bool:
        """Load the files again; False (old certificate kept) when they do not form a valid pair."""
        stamp = self._current_stamp()
        try:
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            kind = type(exc).__name__
            log.warning("TLS certificate reload failed; keeping the previous one", extra={"kind": kind})
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded", extra={"cert": str(self.cert)})
        return True

    def poll(self) -> bool:
        """Reload when the files' size or mtime changed since the last successful load."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        return self.reload()

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.poll()


def server_tls(cert: Path | None, key: Path | None) -> CertReloader | None:
    if cert is None or key is None:
        return None
    return CertReloader(cert, key)
