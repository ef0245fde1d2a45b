"""README's "Uninstalling" step 3, run as written with the real kubectl on the emulated API server.

After `helm uninstall` no operator is left to remove `kubekms.io/finalizer`: a KmsKey deleted then
would wait forever, and so would the CRD's or its namespace's deletion. The README's loop releases
every finalizer (material untouched); afterwards deletions complete.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fixtures.kube import ROOT
from kube import KMSKEYS, NAMESPACES, SECRETS, Cluster

FINALIZER = "kubekms.io/finalizer"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if "kubectl get kmskeys -A" in b]
    return "\n".join(line.removeprefix("   ") for line in block.splitlines())


def test_the_readme_releases_every_finalizer_after_uninstall(kube_cluster: Cluster, tmp_path: Path) -> None:
    keys = [("team-a", "one"), ("team-a", "two"), ("team-b", "three")]
    for ns, name in keys:
        kube_cluster.ensure_namespace(ns)
        kube_cluster.create(KMSKEYS, {"metadata": {"name": name, "finalizers": [FINALIZER]},
                                      "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"}},
                            namespace=ns)
    kube_cluster.create(SECRETS, {"metadata": {"name": "kmskey-x", "labels": {"kubekms.io/key-id": "x"}},
                                  "data": {"version-1": "eA=="}}, namespace="kubekms-system")
    kube_cluster.delete(KMSKEYS, "team-a", "one")  # no operator: it hangs, as on a real cluster
    stuck = kube_cluster.get(KMSKEYS, "team-a", "one")
    assert stuck is not None and stuck["metadata"]["deletionTimestamp"]

    kubeconfig = kube_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block()], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr

    assert kube_cluster.get(KMSKEYS, "team-a", "one") is None, "the pending deletion completed"
    for ns, name in keys[1:]:
        left = kube_cluster.get(KMSKEYS, ns, name)
        assert left is not None and not left["metadata"].get("finalizers")
        kube_cluster.delete(KMSKEYS, ns, name)
        assert kube_cluster.get(KMSKEYS, ns, name) is None, "deletable without an operator"
    assert kube_cluster.get(SECRETS, "kubekms-system", "kmskey-x") is not None, "material is kept"


def seed_after_uninstall(cluster: Cluster) -> None:
    """What `helm uninstall` leaves: KmsKeys with the finalizer (one pending deletion, one with a
    foreign finalizer too) and their material, and no operator."""
    for ns, name, finalizers in (("team-a", "one", [FINALIZER]), ("team-b", "two", ["x.io/keep", FINALIZER])):
        cluster.ensure_namespace(ns)
        cluster.create(KMSKEYS, {"metadata": {"name": name, "finalizers": finalizers},
                                 "spec": {"keyUsage": "encrypt-decrypt", "algorithm": "aes-256-gcm"}},
                       namespace=ns)
    for key_id in ("x", "y"):
        labels = {"kubekms.io/key-id": key_id}
        cluster.create(SECRETS, {"metadata": {"name": f"kmskey-{key_id}", "labels": labels},
                                 "data": {"version-1": "eA=="}}, namespace="kubekms-system")
    cluster.create(SECRETS, {"metadata": {"name": "unrelated"}, "data": {}}, namespace="kubekms-system")
    cluster.delete(KMSKEYS, "team-a", "one")  # hangs without an operator


def release_all(cluster: Cluster, tmp_path: Path, material: str) -> subprocess.CompletedProcess[str]:
    """The chart's post-delete hook command (`uninstall.releaseKeys`), as the Job runs it."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_SERVICE", "KUBEKMS_"))},
           "KUBECONFIG": str(kubeconfig), "KUBEKMS_NAMESPACE": "kubekms-system"}
    return subprocess.run([sys.executable, "-m", "kms_operator", "release-all", "--material", material],
                          env=env, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def test_release_all_keeping_material(kube_cluster: Cluster, tmp_path: Path) -> None:
    seed_after_uninstall(kube_cluster)
    result = release_all(kube_cluster, tmp_path, "keep")
    assert result.returncode == 0, result.stderr
    assert "Released 2 KmsKeys; 2 material Secrets kept" in result.stderr
    assert kube_cluster.get(KMSKEYS, "team-a", "one") is None, "the pending deletion completed"
    two = kube_cluster.get(KMSKEYS, "team-b", "two")
    assert two is not None and two["metadata"]["finalizers"] == ["x.io/keep"]  # others' kept
    for key_id in ("x", "y"):
        secret = kube_cluster.get(SECRETS, "kubekms-system", f"kmskey-{key_id}")
        assert secret is not None and secret["metadata"]["labels"]["kubekms.io/orphaned"] == "true"
    assert "kubekms.io/orphaned" not in (kube_cluster.get(SECRETS, "kubekms-system", "unrelated") or {}).get(
        "metadata", {}).get("labels", {})


def test_release_all_deleting_material(kube_cluster: Cluster, tmp_path: Path) -> None:
    seed_after_uninstall(kube_cluster)
    result = release_all(kube_cluster, tmp_path, "delete")
    assert result.returncode == 0, result.stderr
    assert kube_cluster.get(KMSKEYS, "team-a", "one") is None
    assert [kube_cluster.get(SECRETS, "kubekms-system", f"kmskey-{k}") for k in ("x", "y")] == [None, None]
    assert kube_cluster.get(SECRETS, "kubekms-system", "unrelated") is not None
    kube_cluster.delete(NAMESPACES, None, "team-a")  # nothing waits for an operator any more
    kube_cluster.wait_for(lambda: kube_cluster.get(NAMESPACES, None, "team-a") is None, 10)
