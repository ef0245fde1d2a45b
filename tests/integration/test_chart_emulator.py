"""The Helm chart, installed into the emulated API server, runs the real operator and API.

Each value set is rendered by the real helm, applied with the real kubectl (CRD, ServiceAccounts,
RBAC, Deployments, Services, the generated root-key Secret...), and the two processes are started
from the rendered Deployments: their command, args and environment (the root key resolved from
the applied Secret, the KubeKMS namespace from the Pod's namespace), with loopback ports and a
kubeconfig carrying each Deployment's own ServiceAccount token. A workload bound to the chart's
`kubekms-cryptographic-operator` ClusterRole then uses a key, the chart's `helm test` Pod script
runs against the API, and every request the two processes made is checked against the RBAC the
chart grants them.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.helm import NAMESPACE, Render, template
from fixtures.kube import EXAMPLES
from fixtures.kube_api import ApiProcess
from kube import KMSKEYS, SECRETS, Cluster
from kube.authz import Grants, accesses
from kube.container import Container, stop
from kube.kmskeys import unseal_all, wait_ready
from kube.release import Release

KEYS = "/api/v1/kms/keys"
# Where the helm-test Pod's projected KubeKMS token is mounted (the kubelet would write it there).
TOKEN_FILE = "/var/run/secrets/kubekms/token"
AUDIENCE = "kubekms"  # the chart's default api.tokenAudience
ROOT_SECRET = "kubekms-root-key"
# The verbs README.md documents for kubekms-cryptographic-operator: the chart must grant exactly these.
CRYPTO_VERBS = {"get", "list", "encrypt", "decrypt", "sign", "verify", "generate-mac", "verify-mac"}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # Everything the emulator can store (no Prometheus Operator CRDs), with non-default ports and
    # extra environment to show the processes run with what the chart renders.
    "network-policy-dashboard": {
        "networkPolicy": {"enabled": True},
        "monitoring": {"grafanaDashboard": {"enabled": True}},
        "api": {"port": 9080, "metricsPort": 9191,
                "extraEnv": [{"name": "KUBEKMS_AUTH_CACHE_TTL", "value": "5"}]},
        "operator": {"extraEnv": [{"name": "KUBEKMS_CHECK_INTERVAL", "value": "7"}]},
    },
}


def get(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if get(url) == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


KIND_RESOURCES = {"ServiceAccount": "v1/serviceaccounts", "Role": "rbac.authorization.k8s.io/v1/roles",
                  "RoleBinding": "rbac.authorization.k8s.io/v1/rolebindings", "KmsKey": KMSKEYS,
                  "Pod": "v1/pods"}
# Verbs the chart grants although this run does not use them, each for a stated reason.
UNUSED_ALLOWED: dict[str, set[tuple[str, str, str]]] = {
    # Leader election between operator replicas (a coordination.k8s.io Lease) is being added in
    # parallel; the Role carries its verbs already so that the upgrade needs no RBAC change.
    # Deleting a material Secret: with deletionPolicy Delete the operator purges it only once its
    # recovery window (KUBEKMS_DELETION_WINDOW, 7 days) is over, which this run never reaches
    # (tests/integration/test_operator_lifecycle.py purges with a shifted clock).
    "kubekms-operator": {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
    | {("", "secrets", "delete")},
    # A RotationRecommended Warning on a KmsKey whose AES-GCM version nears 2^30 encryptions:
    # no test run gets there (tests/integration/test_kube_api_cache.py posts one with a low bound).
    "kubekms-api": {("", "events", "create")},
}


def administer(release: Release, cluster: Cluster, api: ApiProcess) -> None:
    """A namespace admin manages a key through the API: create, edit, rotate, delete."""
    binding = release.kubectl("-n", "team-a", "create", "rolebinding", "admin-kms", "--dry-run=client",
                              "-o", "yaml", "--clusterrole=kubekms-admin", "--serviceaccount=team-a:admin")
    release.kubectl("apply", "--validate=false", "-f", "-", stdin=binding)
    Grants.load(cluster).install(cluster.rbac)
    token = cluster.rbac.add_service_account("team-a", "admin", audiences=[AUDIENCE])
    status, body = api.call("POST", KEYS, token, {"projectId": "team-a", "name": "managed"})
    assert status == 200, body
    path = f"{KEYS}/{body['key']['id']}"
    assert api.call("PATCH", path, token, {"description": "edited"})[0] == 200
    status, body = api.call("POST", f"{path}/rotate", token)
    assert status == 200 and body["key"]["version"] == 2, body
    assert api.call("DELETE", path, token)[0] == 200
    # An unknown id misses the cache: the API reads the Secret through (404), then answers 404.
    status, body = api.call("GET", f"{KEYS}/{uuid.uuid4()}", token)
    assert status == 404, body
    cluster.wait_for(lambda: cluster.get(KMSKEYS, "team-a", "managed") is None, timeout=30)


def wait_root_key(cluster: Cluster) -> str:
    """ROOT_ENCRYPTION_KEY from the root-key Secret, once the operator created it."""
    secret = cluster.wait_for(lambda: cluster.get(SECRETS, NAMESPACE, ROOT_SECRET), timeout=30,
                              message="the operator did not create the root-key Secret")
    root_key = base64.b64decode(secret["data"]["ROOT_ENCRYPTION_KEY"]).decode()
    assert len(base64.b64decode(root_key, validate=True)) == 32
    return root_key


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as started:  # no CRD, no KubeKMS namespace: the chart brings both
        yield started


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chart_installs_and_runs_on_the_emulator(
    variant: str, cluster: Cluster, render: Render, tmp_path: Path
) -> None:
    release = Release(cluster, render(VARIANTS[variant]), NAMESPACE, tmp_path)
    applied = release.apply(release.install_docs)
    assert len(applied) == len(release.install_docs) and all(line.endswith(" created") for line in applied)
    assert cluster.get(SECRETS, NAMESPACE, ROOT_SECRET) is None, "the chart renders no root key"

    # A workload: the README's `kubectl create rolebinding` (through apply: the emulator speaks JSON).
    cluster.ensure_namespace("team-a")
    binding = release.kubectl("-n", "team-a", "create", "rolebinding", "app-kms", "--dry-run=client",
                              "-o", "yaml", "--clusterrole=kubekms-cryptographic-operator",
                              "--serviceaccount=team-a:app")
    release.kubectl("apply", "--validate=false", "-f", "-", stdin=binding)
    grants = Grants.load(cluster)
    grants.install(cluster.rbac)

    containers: dict[str, Container] = {}
    procs: list[subprocess.Popen[bytes]] = []
    tokens: dict[str, tuple[str, str]] = {}  # deployment -> (token, ServiceAccount username)
    root_key = ""
    try:
        for name in ("kubekms-operator", "kubekms-api"):
            deployment = release.find("Deployment", name)
            account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
            token = cluster.rbac.add_service_account(NAMESPACE, account)
            tokens[name] = (token, f"system:serviceaccount:{NAMESPACE}:{account}")
            kubeconfig = cluster.write_kubeconfig(tmp_path / f"{name}.kubeconfig", token, NAMESPACE)
            if name == "kubekms-api":
                # The kubelet starts the API only once its required secretKeyRef resolves: after
                # the operator created the root-key Secret.
                root_key = wait_root_key(cluster)
            container = containers[name] = Container.of(deployment, cluster)
            # The operator starts without it (optional reference, no Secret yet) and creates it.
            assert container.env.get("ROOT_ENCRYPTION_KEY") == (root_key if name == "kubekms-api" else None)
            assert container.env["KUBEKMS_NAMESPACE"] == NAMESPACE  # the Pod's namespace
            extra = {"KUBECONFIG": str(kubeconfig)}
            if name == "kubekms-operator":
                # In a Pod the operator serves its liveness endpoint by default; here, where the
                # rendered probe points.
                extra["KUBEKMS_LIVENESS"] = container.probe_url("livenessProbe")
            log = tmp_path / f"{name}.log"
            procs.append(proc := container.start(log, **extra))
            probes = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in container.spec]
            for probe in probes:
                wait_http(container.probe_url(probe), proc, log)
        api_spec = containers["kubekms-api"]
        assert api_spec.probe_url("readinessProbe").endswith("/readyz")
        assert api_spec.probe_url("livenessProbe").endswith("/healthz")
        assert get(f"http://127.0.0.1:{api_spec.local_port('metrics')}/metrics") == 200
        # Workloads call the Service; it must lead to the API container's port.
        service_port = release.find("Service", "kubekms-api")["spec"]["ports"][0]["port"]
        url = release.service_url(f"http://kubekms-api.{NAMESPACE}.svc:{service_port}", containers)
        api = ApiProcess({}, tmp_path / "kubekms-api.log")  # only its HTTP client is used
        api.port = int(url.rsplit(":", 1)[1])

        lifecycle(release, cluster, api, grants, root_key)
        administer(release, cluster, api)
        helm_test(release, cluster, containers, tmp_path)

        # The processes needed no permission beyond what the chart grants their ServiceAccounts,
        # and the chart grants them nothing they do not use (least privilege, both ways).
        grants = Grants.load(cluster)
        for name, (token, user) in tokens.items():
            made = accesses(cluster, token)
            assert len(made) > 5, f"{name} made no requests with its own token"
            assert grants.forbidden(user, [], made) == [], f"{name} exceeded the chart's RBAC"
            used = {(a.group, a.resource, a.verb) for a in made}
            granted = {(group, resource, verb) for g in grants.grants if g.subject == user
                       for group in g.groups for resource in g.resources for verb in g.verbs}
            unused = sorted(granted - used - UNUSED_ALLOWED.get(name, set()))
            assert unused == [], f"{name}: granted, never used: {unused}"
    finally:
        for proc in procs:
            stop(proc)


def lifecycle(release: Release, cluster: Cluster, api: ApiProcess, grants: Grants, root_key: str) -> None:
    """An example KmsKey becomes Ready; the cryptographic-operator workload may use it, not manage it."""
    release.kubectl("-n", "team-a", "apply", "--validate=false", "-f", str(EXAMPLES / "encrypt-decrypt.yaml"))
    key = wait_ready(cluster, "app-data", "team-a")
    secret = cluster.get(SECRETS, NAMESPACE, f"kmskey-{key['status']['keyId']}")
    assert secret is not None, "material belongs in the release namespace (KUBEKMS_NAMESPACE)"
    assert list(unseal_all(root_key, key, secret)) == [1]  # sealed with the chart's root key

    user = "system:serviceaccount:team-a:app"
    groups = ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"]
    verbs = grants.verbs(user, groups, "kubekms.io", "kmskeys", "team-a")
    assert verbs == CRYPTO_VERBS
    token = cluster.rbac.add_service_account("team-a", "app", audiences=[AUDIENCE])  # projected
    key_id = key["status"]["keyId"]
    path = f"{KEYS}/{key_id}"
    plain = base64.b64encode(b"order 42").decode()

    def expect(verb: str, action: str, status: int, body: Any) -> Any:
        if verb in verbs:
            assert status == 200, body
        else:
            assert status == 403 and body["message"] == f"You are not allowed to {action} on cmek", body
        return body

    expect("get", "read", *api.call("GET", f"{KEYS}/key-name/app-data?projectId=team-a", token))
    expect("list", "read", *api.call("GET", f"{KEYS}?projectId=team-a", token))
    encrypt = {"plaintext": plain}
    ciphertext = expect("encrypt", "encrypt", *api.call("POST", f"{path}/encrypt", token, encrypt))
    decrypted = expect("decrypt", "decrypt", *api.call("POST", f"{path}/decrypt", token, ciphertext))
    assert decrypted["plaintext"] == plain
    expect("create", "create", *api.call("POST", KEYS, token, {"projectId": "team-a", "name": "sneaky"}))
    expect("update", "edit", *api.call("PATCH", path, token, {"description": "changed"}))
    expect("rotate", "rotate", *api.call("POST", f"{path}/rotate", token))
    assert cluster.get(KMSKEYS, "team-a", "sneaky") is None
    stored = cluster.get(KMSKEYS, "team-a", "app-data")
    assert stored is not None and stored["status"]["version"] == 1

    stranger = cluster.rbac.add_service_account("team-b", "app", audiences=[AUDIENCE])  # bound to nothing
    status, body = api.call("POST", f"{path}/encrypt", stranger, {"plaintext": plain})
    assert status == 403 and body["error"] == "PermissionDenied"
    # The same workload's default token (audience: the API server) is not a KubeKMS credential.
    default_token = cluster.rbac.add_service_account("team-a", "app")
    status, body = api.call("POST", f"{path}/encrypt", default_token, {"plaintext": plain})
    assert status == 403 and body["error"] == "TokenError", body


def helm_test(release: Release, cluster: Cluster, containers: dict[str, Container], tmp: Path) -> None:
    """`helm test`: the hook's ServiceAccount and RBAC applied, its Pod's script run as the Pod."""
    hook = release.hook_docs("test")
    pods = [d for d in hook if d["kind"] == "Pod"]
    release.apply(d for d in hook if d["kind"] != "Pod")
    Grants.load(cluster).install(cluster.rbac)
    pod = copy.deepcopy(pods[0])
    account = pod["spec"]["serviceAccountName"]
    token_file = tmp / "hook-token"
    # The kubelet would write the projected token (audience from the Pod's volume) at TOKEN_FILE.
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "kubekms-token")
    (source,) = volume["projected"]["sources"]
    audience = source["serviceAccountToken"]["audience"]
    assert audience == AUDIENCE
    token_file.write_text(cluster.rbac.add_service_account(NAMESPACE, account, audiences=[audience]))
    container = Container.of(pod, cluster)
    assert container.env["KUBEKMS_TOKEN_FILE"] == TOKEN_FILE
    env = {"KUBEKMS_URL": release.service_url(container.env["KUBEKMS_URL"], containers),
           "KUBEKMS_TOKEN_FILE": str(token_file), "KUBEKMS_TEST_TIMEOUT": "30"}
    assert container.env["KUBEKMS_PROJECT"] == NAMESPACE
    log = tmp / "helm-test.log"
    proc = container.start(log, **env)
    try:
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        stop(proc)
    assert log.read_text().startswith("ok: key "), log.read_text()
    key = release.find("KmsKey", container.env["KUBEKMS_TEST_KEY"])
    made = wait_ready(cluster, key["metadata"]["name"], NAMESPACE)
    material = f"kmskey-{made['status']['keyId']}"
    assert cluster.get(SECRETS, NAMESPACE, material) is not None
    # The test succeeded: Helm deletes every hook object whose policy says hook-succeeded.
    for doc in reversed(hook):
        if "hook-succeeded" in doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"]:
            release.kubectl("-n", NAMESPACE, "delete", doc["kind"].lower(), doc["metadata"]["name"],
                            "--wait=false", "--ignore-not-found")
    cluster.wait_for(lambda: cluster.get(KMSKEYS, NAMESPACE, key["metadata"]["name"]) is None, timeout=30,
                     message="the operator did not release the helm-test key")
    # Its policy is Delete: the material is marked for purging after the operator's recovery
    # window (KUBEKMS_DELETION_WINDOW), never left behind unmarked.
    left = cluster.get(SECRETS, NAMESPACE, material)
    assert left is None or (
        left["metadata"]["labels"].get("kubekms.io/deleted") == "true"
        and "kubekms.io/purge-at" in left["metadata"]["annotations"]
    ), "helm test left its key material behind"
    assert not [d for d in hook if cluster.get(KIND_RESOURCES[d["kind"]], NAMESPACE, d["metadata"]["name"])]


def run(
    release: Release, cluster: Cluster, name: str, tmp: Path
) -> tuple[Container, subprocess.Popen[bytes]]:
    """Start a rendered Deployment's container as its ServiceAccount, like a kubelet would."""
    deployment = release.find("Deployment", name)
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = cluster.rbac.add_service_account(NAMESPACE, account)
    kubeconfig = cluster.write_kubeconfig(tmp / f"{name}.kubeconfig", token, NAMESPACE)
    container = Container.of(deployment, cluster)
    extra = {"KUBECONFIG": str(kubeconfig)}
    if name == "kubekms-operator":
        extra["KUBEKMS_LIVENESS"] = container.probe_url("livenessProbe")
    log = tmp / f"{name}.log"
    proc = container.start(log, **extra)
    wait_http(container.probe_url("livenessProbe"), proc, log)
    return container, proc


def rendered(values: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A fresh `helm template` (never cached: each call is a new offline render, as in CI or Argo CD)."""
    text = template(values).stdout
    return text, [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("existing", [False, True], ids=["operator-created", "from-an-older-chart"])
def test_rendering_twice_and_applying_both_keeps_the_root_key(
    existing: bool, cluster: Cluster, tmp_path: Path
) -> None:
    """A GitOps install: `helm template | kubectl apply`, later a re-render applied over it
    (what every Argo CD sync does). The root key never changes and the material stays readable."""
    legacy = base64.b64encode(bytes(range(32))).decode()
    if existing:
        # What earlier chart versions rendered (Helm-managed, kept on uninstall and upgrade).
        cluster.ensure_namespace(NAMESPACE)
        cluster.create(SECRETS, {
            "metadata": {"name": ROOT_SECRET, "labels": {"app.kubernetes.io/instance": "kubekms",
                                                         "app.kubernetes.io/managed-by": "Helm"},
                         "annotations": {"helm.sh/resource-policy": "keep"}},
            "data": {"ROOT_ENCRYPTION_KEY": base64.b64encode(legacy.encode()).decode()},
        }, namespace=NAMESPACE)
    first_text, first = rendered({})
    release = Release(cluster, first, NAMESPACE, tmp_path)
    release.apply(release.install_docs)
    Grants.load(cluster).install(cluster.rbac)
    _, operator = run(release, cluster, "kubekms-operator", tmp_path)
    procs = [operator]
    try:
        root_key = wait_root_key(cluster)
        assert (root_key == legacy) is existing
        cluster.ensure_namespace("team-a")
        example = str(EXAMPLES / "encrypt-decrypt.yaml")
        release.kubectl("-n", "team-a", "apply", "--validate=false", "-f", example)
        key = wait_ready(cluster, "app-data", "team-a")
        material = cluster.get(SECRETS, NAMESPACE, f"kmskey-{key['status']['keyId']}")
        assert material is not None and list(unseal_all(root_key, key, material)) == [1]
        stop(operator)

        second_text, second = rendered({})
        assert second_text == first_text, "an offline render must be reproducible (no random values)"
        again = Release(cluster, second, NAMESPACE, tmp_path)
        lines = again.apply(again.install_docs)
        assert lines and all(line.endswith((" unchanged", " configured")) for line in lines), lines
        # A label-tracking GitOps tool prunes what carries the release's instance label and is not
        # rendered: the operator's root-key Secret carries none.
        tracked = cluster.list(SECRETS, NAMESPACE, "app.kubernetes.io/instance=kubekms")
        assert existing or not tracked

        _, operator = run(again, cluster, "kubekms-operator", tmp_path)
        procs.append(operator)
        api, api_proc = run(again, cluster, "kubekms-api", tmp_path)
        procs.append(api_proc)
        assert api.env["ROOT_ENCRYPTION_KEY"] == root_key
        assert len(cluster.history(SECRETS, NAMESPACE, ROOT_SECRET)) == 1, "the root-key Secret was written"
        release.kubectl("-n", "team-a", "apply", "--validate=false", "-f", str(EXAMPLES / "sign-verify.yaml"))
        signing = wait_ready(cluster, "release-signing", "team-a")
        for made in (key, signing):
            secret = cluster.get(SECRETS, NAMESPACE, f"kmskey-{made['status']['keyId']}")
            assert secret is not None and list(unseal_all(root_key, made, secret)) == [1]
        assert cluster.get(KMSKEYS, "team-a", "app-data")["status"]["keyId"] == key["status"]["keyId"]
    finally:
        for proc in procs:
            stop(proc)
