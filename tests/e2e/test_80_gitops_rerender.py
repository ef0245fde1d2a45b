"""An Argo-CD-style install: the chart rendered with `helm template` (no `lookup`, no cluster
access) and applied with kubectl, twice, over the running release. No render holds key material,
the root-key Secret the operator created is never replaced, and existing keys keep decrypting."""

from __future__ import annotations

from pathlib import Path

import yaml
from kindsuite import NAMESPACE, RELEASE, Api, helm, kubectl, kubectl_json, wait_for

ROOT = Path(__file__).resolve().parents[2]


def render() -> str:
    return helm("template", RELEASE, str(ROOT / "charts" / "kubekms"), "--namespace", NAMESPACE,
                "--values", str(ROOT / "tests" / "e2e" / "values-kind.yaml")).stdout


def test_rendering_and_applying_twice_keeps_the_root_key_and_the_keys(tenant: str, admin: Api) -> None:
    key = admin.create_key(tenant, "gitops-aes")
    ciphertext = admin.encrypt(key["id"], b"survives re-renders")
    root = kubectl_json("get", "secret", f"{RELEASE}-root-key", "-n", NAMESPACE)["data"]
    for _ in range(2):
        manifest = render()
        secrets = [d for d in yaml.safe_load_all(manifest) if d and d.get("kind") == "Secret"]
        assert f"{RELEASE}-root-key" not in [s["metadata"]["name"] for s in secrets]  # never rendered
        kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest)
        for deployment in ("kubekms-api", "kubekms-operator"):
            kubectl("rollout", "status", f"deployment/{deployment}", "-n", NAMESPACE, "--timeout=300s")
        assert kubectl_json("get", "secret", f"{RELEASE}-root-key", "-n", NAMESPACE)["data"] == root
        assert wait_for("decrypt after a re-render",
                        lambda: admin.decrypt(key["id"], ciphertext) == b"survives re-renders")
