"""Kubeconfig and in-cluster configuration loading, with real certificates and token files."""

from __future__ import annotations

import base64
import datetime
import os
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kms_api.settings import KubeSettings, load_settings
from kms_core.errors import ConfigError
from kms_kube import config as kc


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubekms-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
    )


def _write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _doc(
    user: dict[str, object], cluster: dict[str, object], *, extra_ctx: bool = False
) -> dict[str, object]:
    contexts = [{"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "dev"}}]
    if extra_ctx:
        contexts.append({"name": "other", "context": {"cluster": "c2", "user": "u1"}})
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "main", "contexts": contexts,
        "clusters": [{"name": "c1", "cluster": cluster},
                     {"name": "c2", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u1", "user": user}],
    }


def test_token_and_inline_ca_and_client_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    path = _write(tmp_path / "config", _doc(
        {"token": "abc.def", "client-certificate-data": b64(cert), "client-key-data": b64(key)},
        {"server": "https://10.0.0.1:6443/", "certificate-authority-data": b64(cert)},
    ))
    cfg = kc.load_kubeconfig(path)
    assert cfg.server == "https://10.0.0.1:6443"
    assert cfg.bearer_token() == "abc.def"
    assert "abc.def" not in repr(cfg) and "PRIVATE" not in repr(cfg)
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert any(c["subject"] == ((("commonName", "kubekms-test"),),) for c in ctx.get_ca_certs())


def test_relative_file_paths_resolve_against_the_kubeconfig(tmp_path: Path) -> None:
    cert, key = _self_signed()
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(cert)
    (tmp_path / "pki" / "client.crt").write_bytes(cert)
    (tmp_path / "pki" / "client.key").write_bytes(key)
    (tmp_path / "token").write_text("from-file\n")
    path = _write(tmp_path / "config", _doc(
        {"tokenFile": "token", "client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
        {"server": "https://k8s:6443", "certificate-authority": "pki/ca.crt"},
    ))
    cfg = kc.load_kubeconfig(path)
    assert cfg.ca_file == str(tmp_path / "pki" / "ca.crt")
    assert cfg.bearer_token() == "from-file"
    assert isinstance(cfg.ssl_context(), ssl.SSLContext)


def test_explicit_context_and_plain_http(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _doc({"token": "t"}, {"server": "https://x"}, extra_ctx=True))
    cfg = kc.load_kubeconfig(path, context="other")
    assert cfg.server == "http://127.0.0.1:9"
    assert cfg.ssl_context() is False


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _doc({}, {"server": "https://x", "insecure-skip-tls-verify": True}))
    ctx = kc.load_kubeconfig(path).ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("user", "cluster", "context", "needle"),
    [
        ({"exec": {"command": "aws"}}, {"server": "https://x"}, None, "exec"),
        ({}, {}, None, "no server"),
        ({}, {"server": "https://x"}, "missing", "no context named 'missing'"),
    ],
)
def test_unusable_kubeconfigs_are_config_errors(
    tmp_path: Path, user: dict[str, object], cluster: dict[str, object], context: str | None, needle: str
) -> None:
    path = _write(tmp_path / "config", _doc(user, cluster))
    with pytest.raises(ConfigError, match=needle):
        kc.load_kubeconfig(path, context)


def test_load_config_prefers_explicit_path_then_kubeconfig_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    env_path = _write(tmp_path / "env-config", _doc({"token": "env"}, {"server": "https://env"}))
    explicit = _write(tmp_path / "explicit", _doc({"token": "explicit"}, {"server": "https://explicit"}))
    monkeypatch.setenv("KUBECONFIG", str(env_path))
    assert kc.load_config().server == "https://env"
    assert kc.load_config(str(explicit)).server == "https://explicit"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="No Kubernetes configuration"):
        kc.load_config()


def test_in_cluster_reads_the_serviceaccount_and_rereads_a_rotated_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = _self_signed()
    (tmp_path / "token").write_text("first")
    (tmp_path / "ca.crt").write_bytes(cert)
    (tmp_path / "namespace").write_text("kubekms-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert kc.in_cluster()
    cfg = kc.load_incluster(tmp_path)
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.namespace == "kubekms-system"
    assert cfg.bearer_token() == "first"
    (tmp_path / "token").write_text("second")
    assert cfg.bearer_token() == "first"  # within the refresh interval
    monkeypatch.setattr(kc, "TOKEN_REFRESH_SECONDS", 0.0)
    assert cfg.bearer_token() == "second"
    assert isinstance(cfg.ssl_context(), ssl.SSLContext)


def test_kube_settings_come_from_flags_over_the_environment() -> None:
    env = {"KUBEKMS_NAMESPACE": "from-env", "KUBEKMS_TOKEN_AUDIENCE": "kubekms, other",
           "KUBEKMS_KUBE_READY_TIMEOUT": "2.5", "KUBEKMS_KUBE_REQUEST_TIMEOUT": "4",
           "KUBECONFIG": os.pathsep.join(["/first/config", "/second/config"])}
    kube = load_settings(["--namespace", "from-flag", "--kube-context", "ctx"], env).kube
    assert kube.request_timeout == 4.0
    assert kube.namespace == "from-flag"
    assert kube.context == "ctx"
    assert kube.token_audiences == ("kubekms", "other")
    assert kube.ready_timeout == 2.5
    assert kube.auth_cache_ttl == 10.0
    assert kube.kubeconfig == "/first/config"  # KUBECONFIG's first file, as kubectl merges
    assert load_settings([], {**env, "KUBEKMS_KUBECONFIG": "/mine"}).kube.kubeconfig == "/mine"
    assert load_settings([], {}).kube == KubeSettings()


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"KUBEKMS_KUBE_READY_TIMEOUT": "soon"}, "kube ready timeout must be a number"),
     ({"KUBEKMS_KUBE_REQUEST_TIMEOUT": "0"}, "kube request timeout must be > 0"),
     ({"KUBEKMS_AUTH_CACHE_TTL": "-1"}, "auth cache TTL must be >= 0")],
)  # fmt: skip
def test_bad_kube_settings_are_refused_at_startup(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings([], env)
