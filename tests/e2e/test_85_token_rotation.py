"""Projected ServiceAccount tokens that really expire: kind-config.yaml turns the API server's
legacy expiry extension off and values-kind.yaml gives both Pods 600 s tokens, which the kubelet
replaces after about 480 s. After the first replacement (and the old token's expiry) the operator
and the API must still work. Slow by nature (about 11 minutes)."""

from __future__ import annotations

import time

from kindsuite import NAMESPACE, Api, apply_key, kubectl, wait_for, wait_ready

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DIGEST = f"import hashlib;print(hashlib.sha256(open('{TOKEN}','rb').read()).hexdigest())"


def token_digest(deployment: str) -> str:
    result = kubectl("exec", "-n", NAMESPACE, f"deploy/{deployment}", "--", "python", "-c", DIGEST)
    return result.stdout.strip()


def test_the_operator_and_the_api_outlive_their_first_tokens(tenant: str, admin: Api) -> None:
    before = {d: token_digest(d) for d in ("kubekms-api", "kubekms-operator")}
    deadline = time.monotonic() + 660  # 600 s lifetime + margin: the old tokens are dead by then
    wait_for("the kubelet to rotate both tokens",
             lambda: all(token_digest(d) != before[d] for d in before), timeout=600, interval=15)
    time.sleep(max(0.0, deadline - time.monotonic()))
    key = admin.create_key(tenant, "after-rotation")  # API: TokenReview, SAR, KmsKey write
    assert admin.decrypt(key["id"], admin.encrypt(key["id"], b"still here")) == b"still here"
    apply_key(tenant, "after-rotation-declared")  # operator: watch, Secret and status writes
    wait_ready(tenant, "after-rotation-declared")
