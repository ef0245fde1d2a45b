"""A rendered Helm release installed into the emulated cluster with the real kubectl.

`helm install` is `helm template` plus applying the documents (hooks aside), so a test renders the
chart (tests/fixtures/helm.py) and hands the documents to `Release`, which applies them with
`kubectl --server <emulator> apply --validate=false` — the same client and wire requests a cluster
would see — and then answers questions about what was installed:

    release = Release(cluster, render({}), "kubekms", tmp_path)
    release.apply(release.install_docs)      # everything except `helm test` hooks
    release.find("Deployment", "kubekms-api")
    release.kubectl("-n", "team-a", "apply", "-f", "crds/examples/encrypt-decrypt.yaml")

Security property: none (test infrastructure); the emulator accepts kubectl's (absent) credentials.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kube.cluster import Cluster
from kube.container import Container

HOOK = "helm.sh/hook"


class Release:
    """The documents of one rendered release and a kubectl bound to the emulator."""

    def __init__(self, cluster: Cluster, docs: list[dict[str, Any]], namespace: str, workdir: Path) -> None:
        self.cluster = cluster
        self.docs = docs
        self.namespace = namespace
        self.workdir = workdir
        cluster.ensure_namespace(namespace)  # `helm install --create-namespace`

    @property
    def install_docs(self) -> list[dict[str, Any]]:
        """What `helm install` creates: every document that is not a hook."""
        return [d for d in self.docs if HOOK not in _annotations(d)]

    def hook_docs(self, hook: str) -> list[dict[str, Any]]:
        """A hook's documents ordered by hook weight, as Helm runs them."""
        docs = [d for d in self.docs if hook in _annotations(d).get(HOOK, "").split(",")]
        return sorted(docs, key=lambda d: int(_annotations(d).get("helm.sh/hook-weight", "0")))

    def find(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.docs:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        raise LookupError(f"the release renders no {kind} {name}")

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Run the real kubectl against the emulator; fails the test on a non-zero exit."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        result = subprocess.run(
            ["kubectl", "--server", self.cluster.url, *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def apply(self, docs: Iterable[dict[str, Any]]) -> list[str]:
        """`kubectl apply` the documents from one file; returns kubectl's per-object lines."""
        path = self.workdir / "release.yaml"
        path.write_text(yaml.safe_dump_all(list(docs)))
        return self.kubectl("apply", "--validate=false", "-f", str(path)).splitlines()

    def service_url(self, url: str, containers: dict[str, Container]) -> str:
        """Map an in-cluster Service URL (`http://<svc>.<ns>.svc:<port>`) to the local process.

        `containers` maps a Deployment name to its running `Container`; the Service's selector
        must select that Deployment's Pods and its port must target a declared container port.
        """
        parts = urlsplit(url)
        host = str(parts.hostname)
        service_name, _, rest = host.partition(".")
        assert rest.startswith(f"{self.namespace}.svc"), f"{url} is not a Service of the release"
        service = self.find("Service", service_name)
        selector = service["spec"]["selector"]
        for name, container in containers.items():
            labels = self.find("Deployment", name)["spec"]["template"]["metadata"]["labels"]
            if selector.items() <= labels.items():
                port = next(p for p in service["spec"]["ports"] if p["port"] == parts.port)
                local = container.local_port(port.get("targetPort", port["port"]))
                return parts._replace(netloc=f"127.0.0.1:{local}").geturl()
        raise LookupError(f"Service {service_name} selects none of {sorted(containers)}")


def _annotations(doc: dict[str, Any]) -> dict[str, str]:
    return dict(doc.get("metadata", {}).get("annotations") or {})
