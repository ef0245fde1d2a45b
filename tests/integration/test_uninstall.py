"""README's "Uninstalling" step 3, run as written with the real kubectl on the emulated API server.

After `helm uninstall` no operator is left to remove `kubekms.io/finalizer`: a KmsKey deleted then
would wait forever, and so would the CRD's or its namespace's deletion. The README's loop releases
every finalizer (material untouched); afterwards deletions complete.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from fixtures.kube import ROOT
from kube import KMSKEYS, SECRETS, Cluster

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
