"""Real Vault clients pointed at KubeKMS, unchanged but for the address and token: the `bao`
CLI (the pinned OpenBao binary) and hvac's transit API."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import hvac
import pytest
from servers import KubeKms, bao_binary, run_readme_block

from fixtures.api import OPERATOR

pytestmark = pytest.mark.integration


def bao(server: KubeKms, *args: str, token: str | None = None, namespace: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env |= {"BAO_ADDR": server.url, "BAO_TOKEN": token or server.token, "HOME": str(server.log_path.parent)}
    if namespace is not None:
        env["BAO_NAMESPACE"] = namespace
    done = subprocess.run(
        [bao_binary(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"bao {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def bao_json(server: KubeKms, *args: str, **kw: Any) -> Any:
    return json.loads(bao(server, *args[:1], "-format=json", *args[1:], **kw))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_bao_cli_writes_reads_and_lists(kubekms: KubeKms) -> None:
    created = bao_json(kubekms, "write", "-f", "transit/keys/cli-key")
    assert created["data"]["type"] == "aes256-gcm96"
    encrypted = bao_json(kubekms, "write", "transit/encrypt/cli-key", f"plaintext={b64(b'from the cli')}")
    ciphertext = encrypted["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:") and encrypted["data"]["key_version"] == 1
    decrypted = bao(
        kubekms, "write", "-field=plaintext", "transit/decrypt/cli-key", f"ciphertext={ciphertext}"
    )
    assert base64.b64decode(decrypted.strip()) == b"from the cli"
    read = bao_json(kubekms, "read", "transit/keys/cli-key")
    assert read["data"]["name"] == "cli-key" and read["data"]["latest_version"] == 1
    table = bao(kubekms, "read", "transit/keys/cli-key")
    assert "aes256-gcm96" in table and "supports_encryption" in table
    listed = bao_json(kubekms, "list", "transit/keys")
    assert "cli-key" in listed


def test_bao_cli_signs_and_errors_like_vault(kubekms: KubeKms) -> None:
    bao(kubekms, "write", "transit/keys/cli-signer", "type=ecdsa-p256")
    signature = bao(
        kubekms, "write", "-field=signature", "transit/sign/cli-signer", f"input={b64(b'doc')}"
    ).strip()
    valid = bao(
        kubekms,
        "write",
        "-field=valid",
        "transit/verify/cli-signer",
        f"input={b64(b'doc')}",
        f"signature={signature}",
    )
    assert valid.strip() == "true"
    env = {
        **os.environ,
        "BAO_ADDR": kubekms.url,
        "BAO_TOKEN": "not-a-token",
        "HOME": str(kubekms.log_path.parent),
    }
    denied = subprocess.run(
        [bao_binary(), "read", "transit/keys/cli-signer"], env=env, capture_output=True, text=True, timeout=60
    )
    assert denied.returncode != 0 and "permission denied" in denied.stderr and "Code: 403" in denied.stderr


def test_bao_cli_namespace_is_a_project(kubekms: KubeKms) -> None:
    bao(kubekms, "write", "-f", "transit/keys/ns-key", namespace="team-cli")
    assert "ns-key" in bao_json(kubekms, "list", "transit/keys", namespace="team-cli")
    listed_default = bao_json(kubekms, "list", "transit/keys")
    assert "ns-key" not in listed_default


def test_hvac_transit_api(kubekms: KubeKms) -> None:
    client = hvac.Client(url=kubekms.url, token=kubekms.token)
    assert client.is_authenticated()
    assert client.sys.read_health_status(method="GET")["sealed"] is False
    transit = client.secrets.transit
    transit.create_key(name="hvac-key")
    encrypted = transit.encrypt_data(name="hvac-key", plaintext=b64(b"hvac secret"))
    ciphertext = encrypted["data"]["ciphertext"]
    decrypted = transit.decrypt_data(name="hvac-key", ciphertext=ciphertext)
    assert base64.b64decode(decrypted["data"]["plaintext"]) == b"hvac secret"
    batch = transit.encrypt_data(
        name="hvac-key", batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}]
    )
    results = batch["data"]["batch_results"]
    back = transit.decrypt_data(
        name="hvac-key", batch_input=[{"ciphertext": r["ciphertext"]} for r in results]
    )
    assert [base64.b64decode(r["plaintext"]) for r in back["data"]["batch_results"]] == [b"a", b"b"]
    assert transit.read_key(name="hvac-key")["data"]["type"] == "aes256-gcm96"
    assert "hvac-key" in transit.list_keys()["data"]["keys"]

    transit.create_key(name="hvac-signer", key_type="ed25519")
    signed = transit.sign_data(name="hvac-signer", hash_input=b64(b"msg"))
    verified = transit.verify_signed_data(
        name="hvac-signer", hash_input=b64(b"msg"), signature=signed["data"]["signature"]
    )
    assert verified["data"]["valid"] is True

    # hvac's create_key refuses type hmac client-side; its generic write sends it.
    client.write_data("transit/keys/hvac-mac", data={"type": "hmac"})
    mac = transit.generate_hmac(name="hvac-mac", hash_input=b64(b"msg"))["data"]["hmac"]
    checked = transit.verify_signed_data(name="hvac-mac", hash_input=b64(b"msg"), hmac=mac)
    assert checked["data"]["valid"] is True
    assert len(base64.b64decode(transit.generate_random_bytes(n_bytes=24)["data"]["random_bytes"])) == 24
    digest = transit.hash_data(hash_input=b64(b"abc"), algorithm="sha2-256")["data"]["sum"]
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    with pytest.raises(hvac.exceptions.InvalidRequest, match="encryption key not found"):
        transit.decrypt_data(name="hvac-missing", ciphertext=ciphertext)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=kubekms.url, token="not-a-token").secrets.transit.read_key(name="hvac-key")


def test_hvac_with_a_role_token_and_a_namespace(kubekms: KubeKms) -> None:
    """A tokens-file token with the cryptographic-operator role in project `proj`: Transit in
    namespace `proj` may encrypt there, and nowhere else."""
    admin = hvac.Client(url=kubekms.url, token=kubekms.token, namespace="proj")
    admin.secrets.transit.create_key(name="role-key")
    operator = hvac.Client(url=kubekms.url, token=OPERATOR, namespace="proj")
    ciphertext = operator.secrets.transit.encrypt_data(name="role-key", plaintext=b64(b"x"))["data"][
        "ciphertext"
    ]
    assert operator.secrets.transit.decrypt_data(name="role-key", ciphertext=ciphertext)["data"][
        "plaintext"
    ] == b64(b"x")
    elsewhere = hvac.Client(url=kubekms.url, token=OPERATOR)
    with pytest.raises(hvac.exceptions.Forbidden):
        elsewhere.secrets.transit.encrypt_data(name="role-key", plaintext=b64(b"x"))


def _readme_block(language: str) -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Vault Transit API", 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block in the README's Transit section"
    return match.group(1)


def test_the_readme_examples_run(kubekms: KubeKms) -> None:
    """The README's bao and hvac examples, unchanged but for the address and the token."""
    script = _readme_block("bash")
    export = 'export BAO_ADDR=http://127.0.0.1:8080 BAO_TOKEN="$(cat .kubekms/admin-token)"'
    env = {"PATH": f"{Path(bao_binary()).parent}:/usr/bin:/bin", "HOME": str(kubekms.log_path.parent)}
    env |= {"BAO_ADDR": kubekms.url, "BAO_TOKEN": kubekms.token}
    out = run_readme_block(script, export, env)
    assert "vault:v1:" in out and "aes256-gcm96" in out and "orders" in out

    code = _readme_block("python")
    code = code.replace('open(".kubekms/admin-token").read().strip()', repr(kubekms.token))
    code = code.replace('"http://127.0.0.1:8080"', repr(kubekms.url))
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["ciphertext"].startswith("vault:v1:")
    assert base64.b64decode(scope["plaintext"]) == b"card 4111"
