"""The Helm chart renders valid Kubernetes objects for every supported value set.

Each rendered document is validated (strict: unknown fields fail) against the Kubernetes OpenAPI
schemas that kubernetes-validate ships, for the oldest Kubernetes the chart supports and a current
one. Objects of other projects' CRDs (ServiceMonitor, PrometheusRule, Certificate) have no schema
there and are the only ones allowed to be skipped.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fixtures.helm import CHART, NAMESPACE, RELEASE, VALUE_SETS, Render, helm, template

# The oldest is Chart.yaml's kubeVersion (a test checks they agree), the newest a current release.
KUBE_VERSIONS = ("1.28", "1.35")
# Kinds of CRDs (other projects', and the helm-test hook's own KmsKey) kubernetes-validate has no schema for.
FOREIGN_CRD_KINDS = {
    "ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate", "CiliumNetworkPolicy", "KmsKey"}


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_lint_strict() -> None:
    result = helm("lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_document_is_a_valid_kubernetes_object(
    render: Render, value_set: str, kube_version: str
) -> None:
    docs = render(VALUE_SETS[value_set])
    assert docs, "nothing rendered"
    skipped = set()
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            skipped.add(doc["kind"])
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            pytest.fail(f"{name} invalid for {kube_version}: {path}: {err.message}")
    assert skipped <= FOREIGN_CRD_KINDS, f"no schema for {skipped - FOREIGN_CRD_KINDS}"


def test_every_namespaced_object_is_in_the_release_namespace(render: Render, value_set: str) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for doc in render(VALUE_SETS[value_set]):
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in doc["metadata"]
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]


def test_default_render_holds_the_expected_objects(render: Render) -> None:
    docs = render({})
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "Role", "PodDisruptionBudget",
            "Pod"} <= kinds(docs)
    assert "Secret" not in kinds(docs), "the operator creates the root key; the chart renders none"
    # Opt-in features stay off by default.
    assert not kinds(docs) & {"NetworkPolicy", "ServiceMonitor", "PrometheusRule", "Certificate", "ConfigMap"}


def test_api_deployment_is_highly_available(render: Render) -> None:
    dep = find(render({}), "Deployment", f"{RELEASE}-api")
    spec = dep["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    pdb = find(render({}), "PodDisruptionBudget")
    assert 1 <= pdb["spec"]["minAvailable"] < spec["replicas"]


def test_api_probes_and_shutdown(render: Render) -> None:
    pod = find(render({}), "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["command"] == ["kubekms-api"]
    args = api["args"]
    assert args[:4] == ["--store", "kubernetes", "--host", "::"]  # dual-stack
    assert args[args.index("--port") + 1] == "8080" and args[args.index("--metrics-port") + 1] == "9090"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    shutdown = int(env_of(api)["KUBEKMS_SHUTDOWN_TIMEOUT"]["value"])
    assert shutdown == 20
    assert pod["terminationGracePeriodSeconds"] > shutdown
    custom = find(render({"api": {"shutdownTimeoutSeconds": 45}}), "Deployment", f"{RELEASE}-api")
    assert custom["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 45


def test_operator_replicas_elect_a_leader_and_roll(render: Render) -> None:
    dep = find(render({}), "Deployment", f"{RELEASE}-operator")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }
    (op,) = dep["spec"]["template"]["spec"]["containers"]
    env = env_of(op)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KUBEKMS_LEADER_ELECTION"]["value"] == "true"
    role = find(render({}), "Role", f"{RELEASE}-operator")
    leases = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert leases == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                       "verbs": ["get", "create", "update"]}]


def test_operator_without_leader_election_is_one_recreated_replica(render: Render) -> None:
    values = {"operator": {"replicas": 1, "leaderElection": {"enabled": False}}}
    docs = render(values)
    dep = find(docs, "Deployment", f"{RELEASE}-operator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    (op,) = dep["spec"]["template"]["spec"]["containers"]
    assert env_of(op)["KUBEKMS_LEADER_ELECTION"]["value"] == "false"
    role = find(docs, "Role", f"{RELEASE}-operator")
    assert not [r for r in role["rules"] if "leases" in r["resources"]]


def test_operator_replicas_without_leader_election_are_refused() -> None:
    result = template({"operator": {"replicas": 2, "leaderElection": {"enabled": False}}}, check=False)
    assert result.returncode != 0
    assert "operator.replicas > 1 needs operator.leaderElection.enabled" in result.stderr


def test_operator_liveness_probe(render: Render) -> None:
    dep = find(render({}), "Deployment", f"{RELEASE}-operator")
    (op,) = dep["spec"]["template"]["spec"]["containers"]
    assert op["command"] == ["kubekms-operator"]
    probe = op["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in op["ports"]}
    assert probe["path"] == "/healthz" and ports[probe["port"]] == 8081


def test_selectors_match_pod_labels(render: Render, value_set: str) -> None:
    docs = render(VALUE_SETS[value_set])
    pods = {}
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), dep["metadata"]["name"]
        pods[dep["metadata"]["name"]] = labels
        for tsc in dep["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            assert tsc["labelSelector"]["matchLabels"].items() <= labels.items()
    api_labels = pods[f"{RELEASE}-api"]
    other_labels = pods[f"{RELEASE}-operator"]

    def selects_api_only(selector: dict[str, str]) -> bool:
        return selector.items() <= api_labels.items() and not selector.items() <= other_labels.items()

    api_pod = find(docs, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    container_ports = {p["name"] for c in api_pod["containers"] for p in c["ports"]}
    for svc in (d for d in docs if d["kind"] == "Service"):
        assert selects_api_only(svc["spec"]["selector"]), svc["metadata"]["name"]
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in container_ports
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        assert selects_api_only(pdb["spec"]["selector"]["matchLabels"])
    for pol in (d for d in docs if d["kind"] == "NetworkPolicy"):
        sel = pol["spec"]["podSelector"]["matchLabels"]
        assert sel.items() <= api_labels.items() or sel.items() <= other_labels.items()
    for mon in (d for d in docs if d["kind"] == "ServiceMonitor"):
        matched = [s for s in docs if s["kind"] == "Service"
                   and mon["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert [s["metadata"]["name"] for s in matched] == [f"{RELEASE}-api-metrics"]
        endpoints = {e["port"] for e in mon["spec"]["endpoints"]}
        assert {p["name"] for p in matched[0]["spec"]["ports"]} == endpoints


def test_existing_root_key_secret_is_referenced_not_created(render: Render) -> None:
    docs = render(VALUE_SETS["existing-root-key"])
    assert "Secret" not in kinds(docs)
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert env_of(c)["ROOT_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "my-root-key",
                                                                                 "key": "key"}
        assert "KUBEKMS_ROOT_KEY_SECRET" not in env_of(c), "an existing Secret is never created"


@pytest.mark.parametrize("name", ["hsm-token-label", "hsm-slot"])
def test_hsm_settings(render: Render, name: str) -> None:
    values = VALUE_SETS[name]["hsm"]
    docs = render(VALUE_SETS[name])
    assert "Secret" not in kinds(docs), "no root key is generated when an HSM seals the keys"
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        env = env_of(c)
        assert "ROOT_ENCRYPTION_KEY" not in env
        assert env["HSM_LIB_PATH"]["value"] == "/opt/hsm/lib/libpkcs11.so"
        assert env["HSM_KEY_LABEL"]["value"] == "kubekms-root"
        assert env["HSM_PIN"]["valueFrom"]["secretKeyRef"] == {"name": "hsm-pin",
                                                               "key": values["pinSecret"].get("key", "pin")}
        if "tokenLabel" in values:
            assert env["HSM_TOKEN_LABEL"]["value"] == "kubekms" and "HSM_SLOT" not in env
        else:
            assert env["HSM_SLOT"]["value"] == "0" and "HSM_TOKEN_LABEL" not in env
        for extra in values.get("extraEnv", []):
            assert env[extra["name"]] == extra
        volume = next(v for v in pod["volumes"] if v["name"] == "hsm-library")
        assert {k: v for k, v in volume.items() if k != "name"} == values["volume"]
        mount = next(m for m in c["volumeMounts"] if m["name"] == "hsm-library")
        assert mount == {"name": "hsm-library", "mountPath": "/opt/hsm", "readOnly": True}


def _api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = find(docs, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize(("name", "secret"), [("tls-existing-secret", "kubekms-api-tls"),
                                              ("tls-cert-manager", f"{RELEASE}-api-tls")])
def test_tls(render: Render, name: str, secret: str) -> None:
    docs = render(VALUE_SETS[name])
    api = _api_container(docs)
    args = api["args"]
    assert args[args.index("--tls-cert") + 1] == "/etc/kubekms/tls/tls.crt"
    assert args[args.index("--tls-key") + 1] == "/etc/kubekms/tls/tls.key"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert api[probe]["httpGet"]["scheme"] == "HTTPS"
    pod = find(docs, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440}} in pod["volumes"]
    test_pod = find(docs, "Pod")
    ca = next(v for v in test_pod["spec"]["volumes"] if v["name"] == "ca")["secret"]
    assert ca["secretName"] == secret and ca["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert env_of(test_pod["spec"]["containers"][0])["KUBEKMS_URL"]["value"].startswith("https://")
    if name == "tls-cert-manager":
        cert = find(docs, "Certificate")
        assert cert["spec"]["secretName"] == secret
        issuer = {"name": "ca-issuer", "kind": "ClusterIssuer", "group": "cert-manager.io"}
        assert cert["spec"]["issuerRef"] == issuer
        assert f"{RELEASE}-api.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
        assert "kms.example.internal" in cert["spec"]["dnsNames"]
    else:
        assert "Certificate" not in kinds(docs)


def test_monitoring_assets_use_the_api_metric_names(render: Render) -> None:
    docs = render(VALUE_SETS["monitoring"])
    mon = find(docs, "ServiceMonitor")
    assert mon["metadata"]["labels"]["release"] == "prometheus"
    # The operator's rotation metrics are scraped from its pods' health port.
    pods = find(docs, "PodMonitor")
    assert pods["metadata"]["labels"]["release"] == "prometheus"
    operator = find(docs, "Deployment", f"{RELEASE}-operator")
    assert pods["spec"]["selector"]["matchLabels"].items() <= (
        operator["spec"]["template"]["metadata"]["labels"].items())
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    by_name = {p["name"]: p["containerPort"] for p in container["ports"]}
    (endpoint,) = pods["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in by_name
    assert by_name[endpoint["port"]] == 8081
    rules = {r["alert"]: r for g in find(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    wanted = {"KubeKMSHighErrorRate", "KubeKMSHighLatency", "KubeKMSKeysDegraded", "KubeKMSOperatorDown",
              "KubeKMSKeyRotationOverdue"}
    assert wanted <= set(rules)
    assert 'status_class="5xx"' in rules["KubeKMSHighErrorRate"]["expr"]
    assert "kubekms_request_duration_seconds_bucket" in rules["KubeKMSHighLatency"]["expr"]
    assert "> 0.5" in rules["KubeKMSHighLatency"]["expr"]
    assert 'kubekms_keys{namespace="kubekms",state="degraded"}' in rules["KubeKMSKeysDegraded"]["expr"]
    assert f'deployment="{RELEASE}-operator"' in rules["KubeKMSOperatorDown"]["expr"]
    overdue = rules["KubeKMSKeyRotationOverdue"]
    assert overdue["expr"].strip() == (
        'max(kubekms_key_rotation_overdue{namespace="kubekms",lateness="over-period"}) > 0')
    assert overdue["for"] == "10m" and overdue["labels"]["severity"] == "warning"
    assert "{{ $value }}" in overdue["annotations"]["description"]
    # Prometheus, not Helm, must expand the alert templates: they survive rendering verbatim.
    assert "{{ $value | humanizePercentage }}" in rules["KubeKMSHighErrorRate"]["annotations"]["description"]
    assert "{{ $value }}" in rules["KubeKMSKeysDegraded"]["annotations"]["description"]
    dashboard = json.loads(find(docs, "ConfigMap")["data"]["kubekms.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("kubekms_requests_total", "kubekms_request_duration_seconds_bucket", "kubekms_keys",
                   "kubekms_crypto_failures_total", "kubekms_sealer_operations_total",
                   "kubekms_sealer_duration_seconds_bucket", "kubekms_cache_requests_total",
                   "kubekms_key_rotations_total", 'kubekms_key_rotation_overdue{namespace=~"$namespace"}'):
        assert metric in exprs, metric
    assert find(docs, "ConfigMap")["metadata"]["labels"]["grafana_dashboard"] == "1"
    by_title = {p["title"]: p for p in dashboard["panels"]}
    assert "sum by (trigger)" in by_title["Key rotations by trigger"]["targets"][0]["expr"]
    assert "by (lateness)" in by_title["Overdue rotations"]["targets"][0]["expr"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_network_policies_allow_only_what_is_needed(render: Render) -> None:
    docs = render(VALUE_SETS["network-policy"])
    api = find(docs, "NetworkPolicy", f"{RELEASE}-api")["spec"]
    assert api["policyTypes"] == ["Ingress", "Egress"]
    assert [r["ports"][0]["port"] for r in api["ingress"]] == [8080, 9090]
    assert api["ingress"][0]["from"] == VALUE_SETS["network-policy"]["networkPolicy"]["apiIngressFrom"]
    egress_ports = {p["port"] for r in api["egress"] for p in r["ports"]}
    assert egress_ports == {53, 443, 6443}
    operator = find(docs, "NetworkPolicy", f"{RELEASE}-operator")["spec"]
    # Only the metrics scrapes of the operator's health port, from the metrics peers.
    metrics_from = VALUE_SETS["network-policy"]["networkPolicy"]["metricsIngressFrom"]
    assert operator["ingress"] == [{"ports": [{"port": 8081, "protocol": "TCP"}], "from": metrics_from}]
    assert {p["port"] for r in operator["egress"] for p in r["ports"]} == {53, 443, 6443}


def test_nodeport_service(render: Render) -> None:
    docs = render(VALUE_SETS["nodeport"])
    svc = find(docs, "Service", f"{RELEASE}-api")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 30080
    assert find(docs, "Service", f"{RELEASE}-api-metrics")["spec"]["type"] == "ClusterIP"
    assert find(docs, "Deployment", f"{RELEASE}-api")["spec"]["replicas"] == 3


def test_helm_test_pod_round_trips_with_its_own_service_account(render: Render) -> None:
    docs = render({})
    pod = find(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["python", "-c"]
    compile(c["args"][0], "roundtrip.py", "exec")
    assert "/encrypt" in c["args"][0] and "/decrypt" in c["args"][0]
    env = env_of(c)
    assert env["KUBEKMS_URL"]["value"] == f"http://{RELEASE}-api.{NAMESPACE}.svc:8080"
    assert env["KUBEKMS_PROJECT"]["value"] == NAMESPACE
    role = find(docs, "Role", f"{RELEASE}-test")
    assert role["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert set(role["rules"][0]["verbs"]) == {"get", "list", "encrypt", "decrypt"}
    key = find(docs, "KmsKey")  # the test's key: a hook, deleted with its material on success
    assert key["spec"]["deletionPolicy"] == "Delete" and len(key["metadata"]["name"]) <= 32
    assert "hook-succeeded" in key["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    assert env_of(c)["KUBEKMS_TEST_KEY"]["value"] == key["metadata"]["name"]
    long_name = find(render({"fullnameOverride": "a-rather-long-release-name-for-kubekms"}), "KmsKey")
    assert len(long_name["metadata"]["name"]) <= 32 and not long_name["metadata"]["name"].endswith("-")
    binding = find(docs, "RoleBinding", f"{RELEASE}-test")
    assert binding["subjects"][0]["name"] == pod["spec"]["serviceAccountName"]
    assert "Pod" not in kinds(render(VALUE_SETS["no-user-roles"]))


def test_notes_show_the_first_call() -> None:
    result = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client")
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "curl -s http://localhost:8080/api/v1/kms/keys" in notes
    assert f"get secret {RELEASE}-root-key" in notes
    assert f"helm test {RELEASE}" in notes


def _notes(*values: str) -> str:
    args = [arg for v in values for arg in ("--set", v)]
    result = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args)
    return result.stdout.split("NOTES:", 1)[1]


PLAINTEXT_WARNING = "WARNING: the API serves plain HTTP"


def test_tls_is_off_without_a_certificate_and_the_notes_warn() -> None:
    docs_default = [d for d in _render_cli() if d["kind"] == "Deployment"]
    api = next(d for d in docs_default if d["metadata"]["name"] == f"{RELEASE}-api")
    args = api["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--tls-cert" not in args
    assert PLAINTEXT_WARNING in _notes()
    assert PLAINTEXT_WARNING not in _notes("api.tls.existingSecret=kubekms-api-tls")
    assert PLAINTEXT_WARNING in _notes("api.tls.existingSecret=kubekms-api-tls", "api.tls.enabled=false")


def _render_cli(*values: str) -> list[dict[str, Any]]:
    """Render with `--set` values (an empty string stays empty, unlike a values-file null)."""
    args = [arg for v in values for arg in ("--set", v)]
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_tls_forced_off_serves_http_even_with_a_secret(render: Render) -> None:
    docs = render(VALUE_SETS["tls-forced-off"])
    api = _api_container(docs)
    assert "--tls-cert" not in api["args"]
    assert all(api[p]["httpGet"]["scheme"] == "HTTP" for p in ("livenessProbe", "readinessProbe"))
    pod = find(docs, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    assert all(v["name"] != "tls" for v in pod["volumes"])
    assert env_of(find(docs, "Pod")["spec"]["containers"][0])["KUBEKMS_URL"]["value"].startswith("http://")


def _projected_audience(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The helm-test Pod's KubeKMS token volume source and its container."""
    pod = find(docs, "Pod")["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "kubekms-token")
    (source,) = volume["projected"]["sources"]
    return source["serviceAccountToken"], pod["containers"][0]


@pytest.mark.parametrize(("values", "audience"), [({}, "kubekms"),
                                                  (VALUE_SETS["custom-token-audience"], "kms.example.com")])
def test_the_api_requires_the_audience_the_helm_test_projects(
    render: Render, values: dict[str, Any], audience: str
) -> None:
    docs = render(values)
    assert env_of(_api_container(docs))["KUBEKMS_TOKEN_AUDIENCE"]["value"] == audience
    token, container = _projected_audience(docs)
    assert token == {"path": "token", "expirationSeconds": 600, "audience": audience}
    pod = find(docs, "Pod")["spec"]
    assert pod["automountServiceAccountToken"] is False  # no Kubernetes API token in the test Pod
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kubekms-token")
    token_file = env_of(container)["KUBEKMS_TOKEN_FILE"]["value"]
    assert f"{mount['mountPath']}/{token['path']}" == token_file and mount["readOnly"] is True
    assert "KUBEKMS_TOKEN_FILE" in container["args"][0]  # the script reads the projected token
    assert "serviceaccount/token" not in container["args"][0]


def test_an_empty_audience_is_allowed_but_warned_about() -> None:
    docs = _render_cli("api.tokenAudience=")
    api = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{RELEASE}-api")
    assert "KUBEKMS_TOKEN_AUDIENCE" not in env_of(api["spec"]["template"]["spec"]["containers"][0])
    token, _ = _projected_audience(docs)
    assert "audience" not in token
    assert "api.tokenAudience is empty" in _notes("api.tokenAudience=")
    notes = _notes()
    assert "api.tokenAudience is empty" not in notes
    assert "create token default --audience kubekms" in notes


def test_kube_version_is_the_oldest_the_crd_supports(render: Render) -> None:
    """Chart.yaml's kubeVersion is exactly the first release whose CRD schema knows every field
    the rendered CRD uses (validation rules' `reason` and `fieldPath` arrived in 1.28)."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBE_VERSIONS[0]}.0-0"
    crd = find(render({}), "CustomResourceDefinition")
    kubernetes_validate.validate(crd, KUBE_VERSIONS[0], strict=True)
    minor = int(KUBE_VERSIONS[0].split(".")[1])
    with pytest.raises(kubernetes_validate.ValidationError, match="fieldPath"):
        kubernetes_validate.validate(crd, f"1.{minor - 1}", strict=True)
    result = helm("template", RELEASE, str(CHART), "--kube-version", f"1.{minor - 1}.0", check=False)
    assert result.returncode != 0 and "kubeVersion" in result.stderr


@pytest.mark.parametrize("mode", ["network-policy", "network-policy-cilium", "network-policy-unrestricted"])
def test_kube_api_server_egress_modes(render: Render, mode: str) -> None:
    """ipBlock: DNS + the API server's CIDRs (both families by default); cilium: DNS only in the
    NetworkPolicy plus a CiliumNetworkPolicy for the `kube-apiserver` entity per Pod; unrestricted:
    no egress policy at all (ingress stays restricted)."""
    docs = render(VALUE_SETS[mode])
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    cilium = [d for d in docs if d["kind"] == "CiliumNetworkPolicy"]
    assert len(policies) == 2
    for pol in policies:
        spec = pol["spec"]
        cidrs = [b["ipBlock"]["cidr"] for rule in spec.get("egress", []) for b in rule.get("to", [])]
        if mode == "network-policy-unrestricted":
            assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
            continue
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert {p["port"] for p in spec["egress"][0]["ports"]} == {53}
        assert cidrs == (["0.0.0.0/0", "::/0"] if mode == "network-policy" else [])
    assert len(cilium) == (2 if mode == "network-policy-cilium" else 0)
    selectors = {tuple(sorted(p["spec"]["podSelector"]["matchLabels"].items())) for p in policies}
    for pol in cilium:
        assert tuple(sorted(pol["spec"]["endpointSelector"]["matchLabels"].items())) in selectors
        (rule,) = pol["spec"]["egress"]
        assert rule["toEntities"] == ["kube-apiserver"]
        assert {p["port"] for p in rule["toPorts"][0]["ports"]} == {"443", "6443"}


def test_uninstall_hook_is_opt_in_and_runs_release_all_after_the_operator_is_gone(render: Render) -> None:
    assert not [d for d in render({}) if "uninstall" in d["metadata"]["name"]]
    docs = [d for d in render({"uninstall": {"releaseKeys": True, "material": "delete"}})
            if d["metadata"]["name"].endswith("-uninstall")]
    assert sorted(d["kind"] for d in docs) == [
        "ClusterRole", "ClusterRoleBinding", "Job", "Role", "RoleBinding", "ServiceAccount"]
    for doc in docs:  # post-delete: the operator Deployment is gone, nothing re-adds finalizers
        notes = doc["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "post-delete"
        assert "hook-succeeded" in notes["helm.sh/hook-delete-policy"]
    job = next(d for d in docs if d["kind"] == "Job")
    weights = {d["kind"]: int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) for d in docs}
    assert weights["Job"] > max(w for k, w in weights.items() if k != "Job")  # RBAC first
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["kubekms-operator", "release-all", "--material", "delete"]
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "delete"]}]
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert cluster_role["rules"][0]["verbs"] == ["get", "list", "patch"]


def test_a_short_lived_projected_token_replaces_the_automounted_one(render: Render) -> None:
    for values, automount in (({}, True), ({"serviceAccountToken": {"expirationSeconds": 600}}, False)):
        deployments = [d for d in render(values) if d["kind"] == "Deployment"]
        assert len(deployments) == 2
        for deployment in deployments:
            pod = deployment["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is automount
            volumes = {v["name"]: v for v in pod["volumes"]}
            mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
            if automount:
                assert "kube-api-access" not in volumes
                continue
            sources = volumes["kube-api-access"]["projected"]["sources"]
            assert sources[0]["serviceAccountToken"] == {"path": "token", "expirationSeconds": 600}
            assert {"ca.crt", "namespace"} == {
                item["path"] for s in sources[1:] for kind in s.values() for item in kind["items"]}
            assert mounts["kube-api-access"]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
