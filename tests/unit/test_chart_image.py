"""Static checks of the shipping files that cannot be built here: the Dockerfile, .dockerignore,
kind-config.yaml and the e2e values agree with what the chart expects.

No Docker engine is available to the unit tests, so these read the files: the final image stage
runs as the numeric UID the chart's securityContext demands, carries no build tools, and the kind
cluster publishes the NodePort the e2e values give the API Service.
"""

from __future__ import annotations

import re

import yaml

from fixtures.helm import CHART, ROOT, Render

DOCKERFILE = (ROOT / "Dockerfile").read_text()
# The instructions without comments: comments may name what the image deliberately lacks.
INSTRUCTIONS = "\n".join(ln for ln in DOCKERFILE.splitlines() if not ln.lstrip().startswith("#"))


def _stages() -> list[str]:
    parts = re.split(r"(?m)^FROM\s", INSTRUCTIONS)
    return parts[1:]


def test_dockerfile_is_multi_stage_and_the_final_stage_is_minimal() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    assert "apt-get" not in final and "build-essential" not in final and "gcc" not in final
    assert "pip install" not in final, "dependencies are installed in the build stage only"
    assert "COPY --from=build /opt/kubekms /opt/kubekms" in final
    assert "HEALTHCHECK" not in INSTRUCTIONS
    assert "rm -rf /var/lib/apt/lists/*" in stages[0]
    assert "PIP_NO_CACHE_DIR=1" in stages[0]


def test_image_user_matches_the_chart_security_context() -> None:
    final = _stages()[-1]
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    assert users == ["10001:10001"], "the last stage must switch to the numeric non-root user"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001
    assert values["podSecurityContext"]["runAsGroup"] == 10001
    # Read-only root filesystem: no byte-code writes at run time, HOME in the /tmp emptyDir.
    assert "PYTHONDONTWRITEBYTECODE=1" in final and "HOME=/tmp" in final


def test_image_has_both_entry_points_and_pkcs11() -> None:
    assert "kubekms-api" in DOCKERFILE and "kubekms-operator" in DOCKERFILE
    assert "import pkcs11" in DOCKERFILE
    assert "softhsm" not in INSTRUCTIONS.lower(), "the HSM library is mounted, never installed"


def test_dockerignore_keeps_the_context_small() -> None:
    rules = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", "deny by default"
    assert set(rules) >= {"!pyproject.toml", "!README.md", "!core/", "!operator/", "!api/"}
    copied = set(re.findall(r"(?m)^COPY (?!--from)(.+?) \S+$", DOCKERFILE))
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    for sources in copied:
        for source in sources.split():
            assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


def test_kind_config_publishes_the_e2e_node_port(render: Render) -> None:
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert kind["name"] == "kubekms-e2e"
    roles = [n["role"] for n in kind["nodes"]]
    assert roles == ["control-plane", "worker"]
    (mapping,) = kind["nodes"][0]["extraPortMappings"]
    assert mapping["listenAddress"] == "127.0.0.1"
    e2e_values = yaml.safe_load((ROOT / "tests" / "e2e" / "values-kind.yaml").read_text())
    docs = render(e2e_values)
    (svc,) = [d for d in docs if d["kind"] == "Service" and d["spec"]["type"] == "NodePort"]
    assert svc["spec"]["ports"][0]["nodePort"] == mapping["containerPort"] == mapping["hostPort"]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    for dep in deployments:
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "kubekms:e2e" and container["imagePullPolicy"] == "Never"
