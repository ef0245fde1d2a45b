"""Helpers of the kind end-to-end suite: guarded kubectl and helm, polling, and an API client.

Every kubectl and helm call names the context `kind-kubekms-e2e` explicitly, so even a changed
current context cannot point them at another cluster.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".tools" / "e2e"
CONTEXT = "kind-kubekms-e2e"
NAMESPACE = "kubekms"
RELEASE = "kubekms"
API_URL = os.environ.get("KUBEKMS_E2E_URL", "http://127.0.0.1:30080")
HELM = os.environ.get("HELM", str(ROOT / ".tools" / "helm"))
TENANT = "e2e-tenant"
TOKEN_AUDIENCE = "kubekms"  # the chart's default api.tokenAudience


def run(*cmd: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return result


def kubectl(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["kubectl", "--context", CONTEXT, *args]
    if stdin is None:
        return run(*cmd, check=check)
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(HELM, "--kube-context", CONTEXT, *args, check=check, timeout=600)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 180, interval: float = 2) -> Any:
    """Poll until probe() returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except AssertionError as err:
            last = err
        if last and not isinstance(last, AssertionError):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last result: {last!r}")


class Api:
    """A client of the KubeKMS API that authenticates as one ServiceAccount (or not at all)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(API_URL + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def ok(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, payload = self.call(method, path, body)
        assert status == 200, f"{method} {path}: {status} {payload}"
        return payload

    def create_key(self, project: str, name: str, **extra: Any) -> dict[str, Any]:
        body = {"projectId": project, "name": name, **extra}
        key: dict[str, Any] = self.ok("POST", "/api/v1/kms/keys", body)["key"]
        return key

    def encrypt(self, key_id: str, plaintext: bytes) -> str:
        """Encrypt, waiting for the operator to have made the key's material."""
        body = {"plaintext": base64.b64encode(plaintext).decode()}

        def attempt() -> str | None:
            status, payload = self.call("POST", f"/api/v1/kms/keys/{key_id}/encrypt", body)
            return str(payload["ciphertext"]) if status == 200 else None

        result: str = wait_for(f"encrypt with {key_id}", attempt, timeout=120)
        return result

    def decrypt(self, key_id: str, ciphertext: str) -> bytes:
        payload = self.ok("POST", f"/api/v1/kms/keys/{key_id}/decrypt", {"ciphertext": ciphertext})
        return base64.b64decode(payload["plaintext"])


def service_account(namespace: str, name: str, cluster_role: str | None) -> Api:
    """A ServiceAccount (bound to a kubekms ClusterRole in its namespace, if given) and its API client."""
    kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
    if cluster_role:
        kubectl("create", "rolebinding", f"{name}-{cluster_role}", "-n", namespace,
                f"--clusterrole={cluster_role}", f"--serviceaccount={namespace}:{name}", check=False)
    # The chart's API requires tokens for its audience (api.tokenAudience, default "kubekms").
    token = kubectl("create", "token", name, "-n", namespace, "--duration=1h", "--audience", TOKEN_AUDIENCE)
    token = token.stdout.strip()
    return Api(token)


def wait_ready(namespace: str, name: str, timeout: float = 180) -> dict[str, Any]:
    """Wait until a KmsKey reports Ready=True and return it."""

    def ready() -> dict[str, Any] | None:
        obj: dict[str, Any] = kubectl_json("get", "kmskey", name, "-n", namespace)
        conditions = obj.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return obj
        return None

    result: dict[str, Any] = wait_for(f"KmsKey {namespace}/{name} Ready", ready, timeout=timeout)
    return result


MANIFEST = """
apiVersion: kubekms.io/v1alpha1
kind: KmsKey
metadata:
  name: {name}
  namespace: {namespace}
spec:
  description: e2e lifecycle
  keyUsage: {usage}
  algorithm: {algorithm}
"""


def apply_key(
    namespace: str, name: str, usage: str = "encrypt-decrypt", algorithm: str = "aes-256-gcm"
) -> None:
    manifest = MANIFEST.format(name=name, namespace=namespace, usage=usage, algorithm=algorithm)
    kubectl("apply", "-f", "-", stdin=manifest)
