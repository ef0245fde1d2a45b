"""values.yaml, values.schema.json and the generated README agree, and bad values are refused.

The schema is strict (additionalProperties: false on every object it describes); pass-through
Kubernetes objects (resources' siblings like affinity, tolerations, security contexts, volume
sources, peers) are the only open objects, and only through named definitions.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml

from fixtures.helm import CHART, ROOT, template

OPEN_DEFINITIONS = {"k8sObject", "stringMap", "envList", "quantity", "port", "duration", "peerList"}


def _docs_tool() -> ModuleType:
    path = ROOT / "charts" / "tools" / "chart_docs.py"
    spec = importlib.util.spec_from_file_location("chart_tools_docs", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _walk(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        if "properties" in node or node.get("type") == "object":
            out.append((path, node))
        for key, value in node.items():
            if key != "definitions":
                out += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _walk(value, f"{path}[{i}]")
    return out


def test_schema_is_strict_everywhere() -> None:
    schema = _schema()
    objects = _walk(schema)
    assert len(objects) > 20
    for path, node in objects:
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
    assert set(schema["definitions"]) == OPEN_DEFINITIONS


def test_default_values_satisfy_the_schema_and_cover_it() -> None:
    import jsonschema

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(_schema()).validate(values)

    def keys(schema_node: dict[str, Any], value: Any, prefix: str) -> None:
        props = schema_node.get("properties")
        if props is None:
            return
        # Every key the schema allows is in values.yaml (and so documented), and the reverse;
        # resource quantities are the one place where optional keys (cpu limit, ephemeral storage)
        # are allowed without a default.
        assert set(value) <= set(props), prefix
        if ".resources" not in prefix:
            assert set(props) == set(value), prefix
        for k, sub in props.items():
            if isinstance(value.get(k), dict):
                keys(sub, value[k], f"{prefix}.{k}")

    keys(_schema(), values, "$")


def test_every_value_is_documented() -> None:
    tool = _docs_tool()
    text = (CHART / "values.yaml").read_text()
    assert tool.undocumented(text) == []
    assert tool.undocumented("a:\n  # -- ok\n  b: 1\n") == ["a"], "the check must be able to fail"


def test_readme_is_generated_from_values() -> None:
    tool = _docs_tool()
    readme = (CHART / "README.md").read_text()
    assert readme == tool.current(), "charts/kubekms/README.md is stale: run `make chart-docs`"
    assert "`hsm.pinSecret.name`" in readme


BAD_VALUES = [
    ({"unknownKey": 1}, "unknownKey"),
    ({"api": {"replicas": 2}}, "replicas"),
    ({"api": {"replicaCount": 1}}, "replicaCount"),
    ({"api": {"replicaCount": "two"}}, "replicaCount"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"api": {"service": {"type": "NodePort", "nodePort": 80}}}, "nodePort"),
    ({"crds": {"enabled": "yes"}}, "enabled"),
    ({"hsm": {"slot": -1}}, "slot"),
    ({"hsm": {"libraryPath": "relative/lib.so"}}, "libraryPath"),
    ({"monitoring": {"prometheusRule": {"errorRateThreshold": 2}}}, "errorRateThreshold"),
    ({"monitoring": {"serviceMonitor": {"interval": "often"}}}, "interval"),
    ({"networkPolicy": {"kubeApiServerPorts": []}}, "kubeApiServerPorts"),
    ({"api": {"tls": {"certManager": {"duration": 90}}}}, "duration"),
    ({"api": {"tls": {"enabled": "auto"}}}, "enabled"),
    ({"api": {"tokenAudience": "kubekms,vault"}}, "tokenAudience"),
    ({"api": {"tokenAudience": "kube kms"}}, "tokenAudience"),
]


@pytest.mark.parametrize(("values", "field"), BAD_VALUES, ids=[f for _, f in BAD_VALUES])
def test_schema_rejects_bad_values(values: dict[str, Any], field: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"accepted {values}"
    assert "schema" in result.stderr and field in result.stderr, result.stderr


INCONSISTENT_VALUES = [
    ({"api": {"podDisruptionBudget": {"minAvailable": 2}}}, "minAvailable must be below"),
    ({"hsm": {"enabled": True, "tokenLabel": "t", "pinSecret": {"name": "p"}}}, "hsm.volume"),
    ({"hsm": {"enabled": True, "pinSecret": {"name": "p"}, "volume": {"emptyDir": {}}}},
     "hsm.tokenLabel or hsm.slot"),
    ({"hsm": {"enabled": True, "tokenLabel": "t", "slot": 1, "pinSecret": {"name": "p"},
              "volume": {"emptyDir": {}}}}, "only one of"),
    ({"hsm": {"enabled": True, "tokenLabel": "t", "volume": {"emptyDir": {}}}}, "hsm.pinSecret.name"),
    ({"api": {"tls": {"enabled": True}}}, "api.tls.existingSecret"),
    ({"api": {"tls": {"enabled": True, "certManager": {"enabled": True}}}}, "issuerRef.name"),
    ({"api": {"serviceAccount": {"create": False}}}, "api.serviceAccount.name"),
]


@pytest.mark.parametrize(("values", "message"), INCONSISTENT_VALUES, ids=[m for _, m in INCONSISTENT_VALUES])
def test_templates_refuse_inconsistent_values(values: dict[str, Any], message: str) -> None:
    result = template(values, check=False)
    assert result.returncode != 0, f"accepted {values}"
    assert message in result.stderr, result.stderr
