"""The chart's CRD is generated from crds/ (no drift) and honours crds.enabled and crds.keep."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import yaml

from fixtures.helm import ROOT, VALUE_SETS, Render

CRD_NAME = "kmskeys.kubekms.io"


def _tool(name: str) -> ModuleType:
    path = ROOT / "charts" / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"chart_tools_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _crds(docs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [d for d in docs if d["kind"] == "CustomResourceDefinition"]


def test_chart_crd_matches_the_source() -> None:
    tool = _tool("chart_crds")
    source = Path(tool.SOURCE)
    assert source.exists(), "crds/kmskeys.kubekms.io.yaml is missing"
    assert Path(tool.TARGET).read_text() == tool.render(source.read_text()), "run `make chart-crds`"


def test_rendered_crd_equals_the_source_plus_chart_metadata(render: Render) -> None:
    source = yaml.safe_load((ROOT / "crds" / f"{CRD_NAME}.yaml").read_text())
    (crd,) = _crds(render({}))
    assert crd["metadata"]["name"] == CRD_NAME
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/name"] == "kubekms"


def test_crds_keep_false_drops_the_keep_policy(render: Render) -> None:
    (crd,) = _crds(render(VALUE_SETS["crds-not-kept"]))
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_crds_enabled_false_renders_no_crd(render: Render) -> None:
    assert _crds(render(VALUE_SETS["crds-off"])) == []


def test_generator_keeps_source_metadata_and_refuses_template_syntax() -> None:
    tool = _tool("chart_crds")
    source = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata:\n  name: things.example.io\n  annotations:\n    a: b\n  labels:\n    x: y\n"
        "spec:\n  group: example.io\n"
    )
    text = tool.render(source)
    assert '    a: "b"\n' in text and '"extra" (dict "x" "y")' in text
    assert text.startswith("{{- /*") and text.endswith("{{- end }}\n")
    try:
        tool.render(source.replace("example.io\n", "{{ bad }}\n"))
    except ValueError as err:
        assert "{{" in str(err)
    else:
        raise AssertionError("template syntax in the CRD source was accepted")
