"""Fixtures of the kind end-to-end suite, and the guard that keeps it off any other cluster.

The suite deletes and restarts things, so it runs only against the cluster `make e2e-kind`
created: KUBECONFIG must be the suite's own file, the current context must be `kind-kubekms-e2e`,
and the cluster's kube-system UID must equal the marker that tests/e2e/run-kind.sh wrote right
after creating it. Anything else stops the session before the first test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kindsuite import CONTEXT, STATE, TENANT, Api, kubectl, run, service_account


def _refuse(reason: str) -> None:
    pytest.exit(f"refusing to run the e2e suite: {reason}. Run it with `make e2e-kind`.", returncode=2)


@pytest.fixture(scope="session", autouse=True)
def guard() -> None:
    """Stop unless this is the cluster that `make e2e-kind` created (context name and marker UID)."""
    if not os.environ.get("KUBECONFIG", "").startswith(str(STATE)):
        _refuse(f"KUBECONFIG must be the suite's own file under {STATE}")
    current = run("kubectl", "config", "current-context", check=False).stdout.strip()
    if current != CONTEXT:
        _refuse(f"current context is {current!r}, not {CONTEXT!r}")
    marker = STATE / "marker"
    if not marker.exists():
        _refuse(f"no marker {marker}")
    uid = run("kubectl", "--context", CONTEXT, "get", "namespace", "kube-system",
              "-o", "jsonpath={.metadata.uid}", check=False).stdout.strip()
    if not uid or uid != marker.read_text().strip():
        _refuse("the cluster's kube-system UID does not match the marker written when it was created")


@pytest.fixture(scope="session")
def tenant() -> Iterator[str]:
    """A tenant namespace; its KmsKeys are the project `e2e-tenant`."""
    kubectl("create", "namespace", TENANT, check=False)
    yield TENANT


@pytest.fixture(scope="session")
def admin(tenant: str) -> Api:
    """A workload ServiceAccount with kubekms-admin in the tenant namespace."""
    return service_account(tenant, "app-admin", "kubekms-admin")


