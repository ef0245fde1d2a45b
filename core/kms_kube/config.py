"""Where the Kubernetes API is and how to authenticate to it: in-cluster or a kubeconfig file.

One configuration for both KubeKMS processes. A token file (the in-cluster projected
ServiceAccount token, or a kubeconfig `tokenFile`) is re-read every minute and after a 401.

Security property: credentials (bearer tokens, client keys) are held only in this object and in the
TLS context built from it; they never appear in `repr`, logs or errors. Inline client keys from a
kubeconfig are written to a private temporary directory (0700) only long enough for OpenSSL to load
them, then removed.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kms_core.errors import ConfigError

SERVICEACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Where the ServiceAccount's token, ca.crt and namespace are mounted when not at the standard path
# (a custom projected volume).
SERVICEACCOUNT_DIR_ENV = "KUBEKMS_SERVICEACCOUNT_DIR"
# Bound ServiceAccount tokens are rotated by the kubelet (hourly by default); re-reading the file
# this often keeps the process authenticated across rotations without a read per request.
TOKEN_REFRESH_SECONDS = 60.0


@dataclass
class KubeConfig:
    """Connection parameters for one API server. Build with `load_config()`."""

    server: str
    namespace: str | None = None  # the pod's namespace in-cluster (the KubeKMS namespace)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    ca_file: str | None = None
    ca_data: str | None = field(default=None, repr=False)
    client_cert: tuple[str, str] | None = field(default=None, repr=False)
    client_cert_data: tuple[bytes, bytes] | None = field(default=None, repr=False)
    insecure: bool = False
    _file_token: str | None = field(default=None, repr=False)
    _file_token_read: float = field(default=0.0, repr=False)

    def bearer_token(self) -> str | None:
        """The current bearer token, re-reading `token_file` at most every TOKEN_REFRESH_SECONDS
        (a projected ServiceAccount token is replaced by the kubelet about hourly)."""
        if self.token_file is None:
            return self.token
        now = time.monotonic()
        if self._file_token is None or now - self._file_token_read > TOKEN_REFRESH_SECONDS:
            try:
                self._file_token = Path(self.token_file).read_text().strip()
            except OSError:
                if self._file_token is None:
                    raise ConfigError(f"Cannot read the token file {self.token_file}") from None
                # Mid-rotation (the kubelet swaps a symlink): keep the last token, read again soon.
            self._file_token_read = now
        return self._file_token

    def refresh_token(self) -> bool:
        """Forget the cached file token (the server answered 401: it may have rotated); True when
        the next request will present a freshly read token, False when there is nothing to re-read."""
        if self.token_file is None:
            return False
        self._file_token_read = float("-inf")
        return True

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS settings for aiohttp: a verifying context, or False for plain HTTP/insecure."""
        if not self.server.startswith("https://"):
            return False
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.client_cert is not None:
            ctx.load_cert_chain(*self.client_cert)
        elif self.client_cert_data is not None:
            with tempfile.TemporaryDirectory(prefix="kubekms-") as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(self.client_cert_data[0])
                key.touch(mode=0o600)
                key.write_bytes(self.client_cert_data[1])
                ctx.load_cert_chain(str(cert), str(key))
        return ctx


def in_cluster() -> bool:
    """Whether this process runs in a pod (the kubelet sets KUBERNETES_SERVICE_HOST)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def load_config(
    kubeconfig: str | None = None, context: str | None = None, *, serviceaccount_dir: Path | None = None
) -> KubeConfig:
    """An explicit kubeconfig file wins; else in-cluster config in a pod; else $KUBECONFIG or
    ~/.kube/config. Raises ConfigError with the reason when none is usable.

    `serviceaccount_dir` is where the pod's token, ca.crt and namespace are mounted; without it,
    $KUBEKMS_SERVICEACCOUNT_DIR or the standard path (a process with its own settings
    declaration passes it explicitly)."""
    if kubeconfig:
        return load_kubeconfig(Path(kubeconfig), context)
    sa_dir = serviceaccount_dir or Path(os.environ.get(SERVICEACCOUNT_DIR_ENV) or SERVICEACCOUNT_DIR)
    if in_cluster() and (sa_dir / "token").exists():
        return load_incluster(sa_dir)
    env = os.environ.get("KUBECONFIG")
    path = Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"
    if not path.exists():
        raise ConfigError(
            f"No Kubernetes configuration: not in a pod and no kubeconfig at {path} "
            "(set KUBECONFIG or --kubeconfig)"
        )
    return load_kubeconfig(path, context)


def load_incluster(sa_dir: Path = SERVICEACCOUNT_DIR) -> KubeConfig:
    """The pod's ServiceAccount: token file (re-read as it rotates), cluster CA and namespace."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("KUBERNETES_SERVICE_HOST is not set: not running in a pod")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    ns_file = sa_dir / "namespace"
    ca_file = sa_dir / "ca.crt"
    return KubeConfig(
        server=f"https://{host}:{port}",
        namespace=ns_file.read_text().strip() if ns_file.exists() else None,
        token_file=str(sa_dir / "token"),
        ca_file=str(ca_file) if ca_file.exists() else None,
    )


def load_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """Parse one kubeconfig file (current-context unless `context` is given).

    Supports token, tokenFile, client certificates (files or inline data), CA files or inline
    data and insecure-skip-tls-verify. Exec and auth-provider plugins are refused with a clear
    message rather than half-supported.
    """
    try:
        doc: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read kubeconfig {path}: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"Kubeconfig {path} is not a mapping")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ConfigError(f"Kubeconfig {path} has no current-context")
    ctx = _named(doc, "contexts", "context", ctx_name, path)
    cluster = _named(doc, "clusters", "cluster", ctx.get("cluster"), path)
    user = _named(doc, "users", "user", ctx.get("user"), path) if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ConfigError(f"Kubeconfig user {ctx.get('user')!r} uses an exec/auth-provider plugin, which "
                          "KubeKMS does not run; use a token or client certificate")
    base = path.parent

    def rel(value: str | None) -> str | None:
        return str(base / value) if value else None

    server = cluster.get("server")
    if not server:
        raise ConfigError(f"Kubeconfig cluster {ctx.get('cluster')!r} has no server")
    cfg = KubeConfig(
        server=str(server).rstrip("/"),
        token=user.get("token"),
        token_file=rel(user.get("tokenFile")),
        ca_file=rel(cluster.get("certificate-authority")),
        ca_data=_b64text(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
    )
    if user.get("client-certificate") and user.get("client-key"):
        cfg.client_cert = (str(rel(user["client-certificate"])), str(rel(user["client-key"])))
    elif user.get("client-certificate-data") and user.get("client-key-data"):
        cfg.client_cert_data = (
            base64.b64decode(user["client-certificate-data"]),
            base64.b64decode(user["client-key-data"]),
        )
    return cfg


def _named(doc: dict[str, Any], section: str, item: str, name: Any, path: Path) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(item) or {}
            if isinstance(value, dict):
                return value
    raise ConfigError(f"Kubeconfig {path} has no {item} named {name!r}")


def _b64text(value: str | None) -> str | None:
    return base64.b64decode(value).decode() if value else None
