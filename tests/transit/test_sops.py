"""SOPS (the pinned 3.11.0 binary `make sops` installs) against KubeKMS's Vault Transit dialect,
unchanged but for the address and the token: `--hc-vault-transit` encrypts a file's data key
with a KubeKMS transit key, and only a valid token gets the file back."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
from servers import ROOT, KubeKms, run_readme_block

pytestmark = pytest.mark.integration

PLAIN = "db_password: hunter2-sops-secret\napi:\n    key: sk-live-0123456789\n"


def sops_binary() -> str:
    found = ROOT / ".tools" / "sops"
    assert found.is_file(), "the sops binary is missing: run `make sops`"
    return str(found)


def sops(
    server: KubeKms, home: Path, *args: str, token: str | None = None, namespace: str | None = None
) -> subprocess.CompletedProcess[str]:
    # Only VAULT_ADDR/VAULT_TOKEN (and VAULT_NAMESPACE) reach sops; HOME is an empty directory,
    # so no ~/.vault-token or ~/.config/sops of the machine takes part.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "SOPS_"))}
    env |= {"VAULT_ADDR": server.url, "VAULT_TOKEN": token or server.token, "HOME": str(home)}
    if namespace is not None:
        env["VAULT_NAMESPACE"] = namespace
    return subprocess.run(
        [sops_binary(), *args], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=home
    )


def create_key(server: KubeKms, name: str, namespace: str | None = None) -> None:
    headers = {"X-Vault-Token": server.token} | ({"X-Vault-Namespace": namespace} if namespace else {})
    created = requests.post(f"{server.url}/v1/transit/keys/{name}", headers=headers, json={}, timeout=10)
    assert created.status_code in (200, 204), created.text


def test_sops_encrypts_and_decrypts_with_a_transit_key(kubekms: KubeKms, tmp_path: Path) -> None:
    create_key(kubekms, "sops")
    plain = tmp_path / "secrets.yaml"
    plain.write_text(PLAIN)
    key_url = f"{kubekms.url}/v1/transit/keys/sops"

    encrypted = sops(kubekms, tmp_path, "--encrypt", "--hc-vault-transit", key_url, str(plain))
    assert encrypted.returncode == 0, encrypted.stderr
    out = encrypted.stdout
    assert "hunter2-sops-secret" not in out and "sk-live-0123456789" not in out
    assert "ENC[AES256_GCM," in out
    assert "hc_vault:" in out and f"vault_address: {kubekms.url}" in out
    assert "engine_path: transit" in out and "key_name: sops" in out
    # The data key is wrapped by KubeKMS's transit encrypt: KubeKMS unwraps it to 32 bytes.
    wrapped = re.search(r"enc: (vault:v1:\S+)", out)
    assert wrapped, out
    unwrapped = requests.post(
        kubekms.url + "/v1/transit/decrypt/sops",
        headers={"X-Vault-Token": kubekms.token},
        json={"ciphertext": wrapped.group(1)},
        timeout=10,
    )
    assert unwrapped.status_code == 200, unwrapped.text
    assert len(base64.b64decode(unwrapped.json()["data"]["plaintext"])) == 32

    sealed = tmp_path / "secrets.enc.yaml"
    sealed.write_text(out)
    decrypted = sops(kubekms, tmp_path, "--decrypt", str(sealed))
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == PLAIN

    denied = sops(kubekms, tmp_path, "--decrypt", str(sealed), token="not-a-token")
    assert denied.returncode != 0
    assert "hunter2-sops-secret" not in denied.stdout + denied.stderr
    assert "403" in denied.stderr or "permission denied" in denied.stderr, denied.stderr
    assert "not-a-token" not in kubekms.logs()


def test_sops_uses_a_project_through_vault_namespace(kubekms: KubeKms, tmp_path: Path) -> None:
    """SOPS has no namespace option, but its Vault client sends VAULT_NAMESPACE as
    X-Vault-Namespace, which KubeKMS maps to the project. The file does not record it: decrypting
    needs the same VAULT_NAMESPACE, and without it the key is not found in `default`."""
    create_key(kubekms, "sops-ns", namespace="team-sops")
    plain = tmp_path / "secrets.yaml"
    plain.write_text(PLAIN)
    key_url = f"{kubekms.url}/v1/transit/keys/sops-ns"
    encrypted = sops(
        kubekms, tmp_path, "--encrypt", "--hc-vault-transit", key_url, str(plain), namespace="team-sops"
    )
    assert encrypted.returncode == 0, encrypted.stderr
    assert "hunter2-sops-secret" not in encrypted.stdout and "key_name: sops-ns" in encrypted.stdout
    sealed = tmp_path / "secrets.enc.yaml"
    sealed.write_text(encrypted.stdout)

    decrypted = sops(kubekms, tmp_path, "--decrypt", str(sealed), namespace="team-sops")
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == PLAIN
    elsewhere = sops(kubekms, tmp_path, "--decrypt", str(sealed))
    assert elsewhere.returncode != 0 and "encryption key not found" in elsewhere.stderr, elsewhere.stderr


def test_the_readme_sops_example_runs(kubekms: KubeKms, tmp_path: Path) -> None:
    """The README's SOPS block, unchanged but for the address and the token."""
    section = (ROOT / "README.md").read_text().split("## Vault Transit API", 1)[1]
    block = next(b for b in re.findall(r"```bash\n(.*?)```", section, re.S) if "sops --encrypt" in b)
    export = 'export VAULT_ADDR=http://127.0.0.1:8080 VAULT_TOKEN="$(cat .kubekms/admin-token)"'
    create_key(kubekms, "sops")
    (tmp_path / "secrets.yaml").write_text(PLAIN)
    env = {"PATH": f"{Path(sops_binary()).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    env |= {"VAULT_ADDR": kubekms.url, "VAULT_TOKEN": kubekms.token}
    assert run_readme_block(block, export, env, tmp_path) == PLAIN
    assert "hunter2-sops-secret" not in (tmp_path / "secrets.enc.yaml").read_text()
