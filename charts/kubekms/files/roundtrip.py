"""`helm test` check: find the test key through the API and round-trip encrypt/decrypt.

Runs inside the test Pod with a projected ServiceAccount token for the KubeKMS audience (read
again for every call: the kubelet rotates it), exactly as a workload would. The key is a KmsKey
the chart creates as a test hook (deletionPolicy Delete): Helm deletes it, and the operator its
material, once the test succeeded, so nothing is left behind. Only the round-trip verdict is
printed, never key material.
"""

import base64
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ["KUBEKMS_URL"].rstrip("/")
PROJECT = os.environ["KUBEKMS_PROJECT"]
KEY_NAME = os.environ.get("KUBEKMS_TEST_KEY", "helm-test")
CA_FILE = "/etc/kubekms/ca/ca.crt"
TOKEN_FILE = os.environ.get("KUBEKMS_TOKEN_FILE", "/var/run/secrets/kubekms/token")
DEADLINE = time.monotonic() + float(os.environ.get("KUBEKMS_TEST_TIMEOUT", "120"))


def context() -> ssl.SSLContext | None:
    if not BASE.startswith("https://"):
        return None
    if os.path.exists(CA_FILE):
        return ssl.create_default_context(cafile=CA_FILE)
    # The TLS Secret carries no CA: the check is the round trip, not the certificate chain.
    print("warning: no ca.crt in the TLS Secret; not verifying the API certificate")
    return ssl._create_unverified_context()  # noqa: S323


def call(method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    with open(TOKEN_FILE) as f:
        token = f.read().strip()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)  # noqa: S310
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10, context=context()) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def retry(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    """Call until 200: the API may still be warming up, or the operator still creating material."""
    while True:
        try:
            status, payload = call(method, path, body)
        except OSError as err:
            status, payload = 0, {"message": str(err)}
        if status == 200:
            return payload
        if time.monotonic() > DEADLINE:
            sys.exit(f"{method} {path}: {status} {payload.get('message')}")
        time.sleep(2)


def key_id() -> str:
    """The test key's id, once the operator made its material (the API then finds it by name)."""
    key = retry("GET", f"/api/v1/kms/keys/key-name/{KEY_NAME}?projectId={PROJECT}").get("key")
    if not isinstance(key, dict):
        sys.exit("the API answered without a key")
    return str(key["id"])


def main() -> None:
    kid = key_id()
    plaintext = base64.b64encode(secrets.token_bytes(48)).decode()
    encrypted = retry("POST", f"/api/v1/kms/keys/{kid}/encrypt", {"plaintext": plaintext})
    ciphertext = encrypted["ciphertext"]
    decrypted = retry("POST", f"/api/v1/kms/keys/{kid}/decrypt", {"ciphertext": ciphertext})
    if decrypted.get("plaintext") != plaintext:
        sys.exit("round trip failed: decrypt did not return the encrypted plaintext")
    print(f"ok: key {kid} round-tripped {len(base64.b64decode(plaintext))} bytes")


if __name__ == "__main__":
    main()
