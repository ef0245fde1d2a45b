"""kms_kube's kubeconfig loader against the reference: the official `kubernetes` client's loader
reads the same files, and both must agree on where the API server is and how to authenticate
(server, bearer token, CA, client certificate, TLS verification). The official client is the
reference implementation here; KubeKMS's processes no longer import it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest
import yaml

from kms_kube import config as kc
from kube.tls import ServerCert


def write(path: Path, cluster: dict[str, Any], user: dict[str, Any], context: str = "main") -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "x"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def reference(path: Path) -> kubernetes.client.Configuration:
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=cfg, persist_config=False)
    return cfg


@pytest.fixture
def cert(tmp_path: Path) -> ServerCert:
    return ServerCert.create(tmp_path / "pki", common_name="kubekms-reference")


def cases(tmp_path: Path, cert: ServerCert) -> dict[str, Path]:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    pem = cert.cert_file.read_bytes()
    data = base64.b64encode(pem).decode()
    key_data = base64.b64encode(cert.key_file.read_bytes()).decode()
    return {
        "token+ca-file": write(tmp_path / "a", {"server": "https://10.0.0.1:6443",
                                                "certificate-authority": str(cert.cert_file)},
                               {"token": "inline-token"}),
        "token-file+ca-data": write(tmp_path / "b", {"server": "https://k8s.example:443",
                                                     "certificate-authority-data": data},
                                    {"tokenFile": str(token_file)}),
        "client-cert-files": write(tmp_path / "c", {"server": "https://10.0.0.2:6443",
                                                    "certificate-authority": str(cert.cert_file)},
                                   {"client-certificate": str(cert.cert_file),
                                    "client-key": str(cert.key_file)}),
        "client-cert-data+insecure": write(tmp_path / "d", {"server": "https://10.0.0.3:6443",
                                                            "insecure-skip-tls-verify": True},
                                           {"client-certificate-data": data, "client-key-data": key_data}),
    }


@pytest.mark.parametrize("case", ["token+ca-file", "token-file+ca-data", "client-cert-files",
                                  "client-cert-data+insecure"])
def test_kms_kube_reads_a_kubeconfig_as_the_official_client_does(
    case: str, tmp_path: Path, cert: ServerCert
) -> None:
    path = cases(tmp_path, cert)[case]
    ours, theirs = kc.load_kubeconfig(path), reference(path)
    assert ours.server == theirs.host
    bearer = theirs.api_key.get("authorization") or theirs.api_key.get("BearerToken")
    # client-go trims a token file's whitespace (a trailing newline is not part of the token);
    # the Python client keeps it, which only its own header formatting tolerates.
    expected = bearer.strip() if bearer else None
    assert (f"Bearer {ours.bearer_token()}" if ours.bearer_token() else None) == expected
    assert ours.insecure is (not theirs.verify_ssl)
    if theirs.ssl_ca_cert:  # the official client writes inline CA data to a temporary file
        ca = Path(theirs.ssl_ca_cert).read_text()
        assert (ours.ca_data or Path(str(ours.ca_file)).read_text()).strip() == ca.strip()
    else:
        assert ours.ca_file is None and ours.ca_data is None
    if theirs.cert_file:
        cert_pem = Path(theirs.cert_file).read_bytes()
        if ours.client_cert_data is not None:
            ours_cert = ours.client_cert_data[0]
        else:
            assert ours.client_cert is not None
            ours_cert = Path(ours.client_cert[0]).read_bytes()
        assert ours_cert.strip() == cert_pem.strip()
    else:
        assert ours.client_cert is None and ours.client_cert_data is None
