"""Self-signed TLS certificates for tests, and TLS for the emulated API server, so tests can drive
the real in-cluster configuration path
(https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT verified against the mounted ca.crt).

`ServerCert.create(dir)` makes a self-signed certificate for 127.0.0.1/localhost (it is its own
CA: ca.crt is the certificate itself) and `tls_server_class(context)` a kmock-compatible
aiohttp test server class that serves HTTPS with it.

Security property: none (test infrastructure; a throwaway key in a temporary directory).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import RawTestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServerCert:
    cert_file: Path
    key_file: Path

    @classmethod
    def create(
        cls, directory: Path, common_name: str = "kube-apiserver (emulated)", stem: str = "apiserver"
    ) -> ServerCert:
        """A certificate for 127.0.0.1 and localhost, written as `<stem>.crt` / `<stem>.key`."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cls(cert_file, key_file)

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def tls_server_class(context: ssl.SSLContext) -> type[RawTestServer]:
    """An aiohttp RawTestServer that listens with TLS (kmock.Server's `server_cls`)."""

    class TlsRawTestServer(RawTestServer):
        async def start_server(self, **kwargs: Any) -> None:
            kwargs["ssl"] = context
            await super().start_server(**kwargs)

    return TlsRawTestServer
