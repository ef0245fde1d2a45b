"""The real operator facing writes the API server refuses (item 4 of issue 12).

A CEL, schema or size rejection, or a policy's 403, is a verdict on the request: the key shows
Degraded/ApiRejected with the API server's message and one Warning Event, the write is attempted
KUBEKMS_REJECTED_ATTEMPTS times for the same desire and then no more; a new desire (a new
rotation request, a spec change) starts over. Rejections come from the emulator's own validation
(`kube.validation`) or, for a webhook-style denial, from a fault answering a given Status.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from fixtures.kube import CRD_PATH, OperatorProcess
from kube import CRDS, KMSKEYS, KUBEKMS_NAMESPACE, SECRETS, Cluster
from kube.compat import status_body
from kube.kmskeys import condition, kmskey, material_secrets, reasons, wait_degraded, wait_ready

ATTEMPTS = 3
FAST = {"KUBEKMS_REJECTED_ATTEMPTS": str(ATTEMPTS), "KUBEKMS_RETRY_DELAY": "0.1"}


def requests(cluster: Cluster, method: str, path_end: str, containing: str = "") -> int:
    """How many `method` requests for a path ending in `path_end` the emulator served."""
    assert cluster.emulator is not None
    return sum(
        1
        for r in list(cluster.emulator)
        if r.method.value == method and r.url.path.endswith(path_end) and containing in r.text
    )


def stays(probe: Callable[[], Any], expected: Any, seconds: float) -> None:
    """`probe()` equals `expected` now and for `seconds` (several periodic checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe() == expected
        time.sleep(0.2)


@pytest.mark.parametrize("kube_cluster", [{"max_secret_bytes": 120}], indirect=True)
def test_rotation_refused_for_size_is_degraded_and_bounded(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    # One sealed AES-256 version (~80 bytes) fits the lowered limit; a second one does not.
    kube_operator_factory(**FAST).start()
    kube_cluster.create(KMSKEYS, kmskey("k"), namespace="default")
    key = wait_ready(kube_cluster, "k")
    secret_path = f"/secrets/kmskey-{key['status']['keyId']}"

    kube_cluster.patch(KMSKEYS, "default", "k", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
    key = wait_degraded(kube_cluster, "k", "ApiRejected")
    message = condition(key, "Degraded")["message"]
    assert message.startswith("the API server rejected a write (422 Invalid): Secret ")
    assert "data: Too long: may not be more than 120 bytes" in message
    assert condition(key, "Ready")["status"] == "False"
    # Exactly ATTEMPTS patches, then none, although the periodic check runs every second.
    kube_cluster.wait_for(lambda: requests(kube_cluster, "PATCH", secret_path) == ATTEMPTS, 20)
    stays(lambda: requests(kube_cluster, "PATCH", secret_path), ATTEMPTS, 4)
    assert reasons(kube_cluster, "k").count("ApiRejected") == 1
    assert len(kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, secret_path.rsplit("/", 1)[1])["data"]) == 1

    # The limit is lifted and a new rotation is requested: a new desire, attempted again.
    assert kube_cluster.emulator is not None
    kube_cluster.emulator.max_secret_bytes = 1024 * 1024
    kube_cluster.patch(KMSKEYS, "default", "k", {"metadata": {"annotations": {"kubekms.io/rotate": "r2"}}})
    key = wait_ready(kube_cluster, "k", version=2)
    assert condition(key, "Degraded")["status"] == "False"
    assert len(material_secrets(kube_cluster)) == 1


def test_status_refused_by_the_schema_is_degraded_and_bounded(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    # A CRD whose status schema the operator's status does not fit (as with a stale CRD).
    crd = yaml.safe_load(CRD_PATH.read_text())
    strict = copy.deepcopy(crd)
    status_props = strict["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"][
        "properties"
    ]
    status_props["secretName"]["maxLength"] = 8
    kube_cluster.delete(CRDS, None, crd["metadata"]["name"])
    kube_cluster.create(CRDS, strict)

    kube_operator_factory(**FAST).start()
    kube_cluster.create(KMSKEYS, kmskey("k"), namespace="default")
    key = wait_degraded(kube_cluster, "k", "ApiRejected")
    message = condition(key, "Degraded")["message"]
    assert (
        'KmsKey.kubekms.io "k" is invalid: status.secretName: Too long: may not be more than 8 bytes'
        in message
    )
    refused = lambda: requests(kube_cluster, "PATCH", "/kmskeys/k/status", containing='"secretName"')  # noqa: E731
    kube_cluster.wait_for(lambda: refused() == ATTEMPTS, 20)
    stays(refused, ATTEMPTS, 4)
    assert reasons(kube_cluster, "k").count("ApiRejected") == 1
    # The material was made once, whatever the retries: one Secret, one version.
    (secret,) = material_secrets(kube_cluster)
    assert secret["metadata"]["name"] == f"kmskey-{key['status']['keyId']}"
    assert list(secret["data"]) == ["version-1"]

    # A spec change is a new desire: attempted again (and refused again, ATTEMPTS more times).
    kube_cluster.patch(KMSKEYS, "default", "k", {"spec": {"description": "retry please"}})
    kube_cluster.wait_for(lambda: refused() == 2 * ATTEMPTS, 20)
    stays(refused, 2 * ATTEMPTS, 3)


def test_deletion_refused_by_policy_gives_up_and_leaves_material(
    kube_cluster: Cluster, kube_operator_factory: Callable[..., OperatorProcess]
) -> None:
    kube_operator_factory(**FAST, KUBEKMS_DELETION_WINDOW="0").start()  # deleted at once
    kube_cluster.create(KMSKEYS, kmskey("k", deletionPolicy="Delete"), namespace="default")
    key = wait_ready(kube_cluster, "k")
    name = f"kmskey-{key['status']['keyId']}"
    denial = status_body(
        403, "Forbidden", 'admission webhook "keep-secrets.example" denied the request: keep'
    )
    kube_cluster.fail(120, path=f"/secrets/{name}$", method="DELETE", body=denial)

    kube_cluster.delete(KMSKEYS, "default", "k")
    kube_cluster.wait_for(lambda: kube_cluster.get(KMSKEYS, "default", "k") is None, 30)
    assert requests(kube_cluster, "DELETE", f"/secrets/{name}") == ATTEMPTS
    assert kube_cluster.get(SECRETS, KUBEKMS_NAMESPACE, name) is not None  # material untouched
    events = {e["reason"]: e for e in kube_cluster.events("default", "k")}
    assert "keep-secrets.example" in events["ApiRejected"]["message"]
    assert events["ApiRejected"]["type"] == "Warning"
    assert events["MaterialLeftInPlace"]["type"] == "Warning"
