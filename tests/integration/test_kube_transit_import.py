"""Transit BYOK and key configuration in Kubernetes mode (real API and operator processes, the
emulated API server): import and the wrapping key are refused (the operator is the only writer
of key material), `exportable` cannot be turned on (the CRD keeps spec.exportable immutable),
and `auto_rotate_period` on create lands in the KmsKey's spec."""

from __future__ import annotations

from typing import Any

from test_kube_transit import account, ready, vault

from fixtures.kube import OperatorProcess
from fixtures.kube_api import ApiProcess
from kms_api.kube.store import EXPORTABLE_IMMUTABLE, PLAINTEXT_BACKUP_REFUSED
from kms_api.transit.imports import KUBERNETES_REFUSED
from kube import KMSKEYS, Cluster

VERBS = ["get", "list", "create", "update", "rotate", "encrypt", "decrypt"]


def test_import_and_exportable_are_refused_and_rotation_period_is_kept(
    kube_cluster: Cluster, kube_operator: OperatorProcess, kube_api: ApiProcess
) -> None:
    owner = account(kube_cluster, "team-i", "app", VERBS)
    ns: dict[str, Any] = {"namespace": "team-i", "token": owner}

    assert vault(kube_api, "GET", "/v1/transit/wrapping_key", **ns) == (400, {"errors": [KUBERNETES_REFUSED]})
    assert vault(kube_api, "POST", "/v1/transit/keys/byok/import", {"ciphertext": "AAAA"}, **ns) == (
        400,
        {"errors": [KUBERNETES_REFUSED]},
    )
    assert kube_cluster.get(KMSKEYS, "team-i", "byok") is None

    status, created = vault(kube_api, "POST", "/v1/transit/keys/rot", {"auto_rotate_period": "2h"}, **ns)
    assert status == 200, created
    assert created["data"]["auto_rotate_period"] == 7200
    assert ready(kube_cluster, "team-i", "rot")() is not None
    obj = kube_cluster.get(KMSKEYS, "team-i", "rot")
    assert obj is not None and obj["spec"]["rotationPeriod"] in ("2h", "7200s", "2h0m0s"), obj["spec"]

    status, refused = vault(kube_api, "POST", "/v1/transit/keys/rot/config", {"exportable": True}, **ns)
    assert (status, refused) == (400, {"errors": [EXPORTABLE_IMMUTABLE]})
    status, read = vault(kube_api, "GET", "/v1/transit/keys/rot", **ns)
    assert status == 200 and read["data"]["exportable"] is False

    # No plaintext backups in Kubernetes mode: neither at create nor through config; no restore.
    body = {"allow_plaintext_backup": True}
    status, refused = vault(kube_api, "POST", "/v1/transit/keys/rot/config", body, **ns)
    assert (status, refused) == (400, {"errors": [PLAINTEXT_BACKUP_REFUSED]})
    status, refused = vault(kube_api, "POST", "/v1/transit/keys/pb", body, **ns)
    assert (status, refused) == (400, {"errors": [PLAINTEXT_BACKUP_REFUSED]})
    assert kube_cluster.get(KMSKEYS, "team-i", "pb") is None
    status, read = vault(kube_api, "GET", "/v1/transit/keys/rot", **ns)
    assert status == 200 and read["data"]["allow_plaintext_backup"] is False
    assert vault(kube_api, "POST", "/v1/transit/restore/rb", {"backup": "AAAA"}, **ns) == (
        400,
        {"errors": [KUBERNETES_REFUSED]},
    )
