"""Generate charts/kubekms/README.md from the `# --` comments in values.yaml.

values.yaml is the one place a value is documented (cert-manager's convention): a `# -- text`
comment right above a key documents it, and following `#` lines continue the text. The README
table lists every leaf value with its type (from values.schema.json), default and description.
`undocumented()` lists keys without such a comment; the chart tests require it to be empty.

Usage: python charts/tools/chart_docs.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubekms"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
README = CHART / "README.md"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")
_DOC = re.compile(r"^ *# -- ?(?P<text>.*)$")
_MORE = re.compile(r"^ *# ?(?P<text>.*)$")

_VALUE_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}

INTRO = """\
# KubeKMS Helm chart

<!-- Generated from values.yaml by `make chart-docs` (charts/tools/chart_docs.py). Do not edit:
     a test fails when this file drifts from values.yaml. -->

{description}

Chart version `{version}`, app version `{app_version}`, Kubernetes `{kube_version}`.

## Install

```sh
helm install kubekms charts/kubekms --namespace kubekms --create-namespace
helm test kubekms --namespace kubekms
```

The chart installs the `KmsKey` CRD, the operator (one replica), the API (at least two replicas
behind a PodDisruptionBudget), least-privilege RBAC, and three ClusterRoles for your users:
`kubekms-admin`, `kubekms-viewer` and `kubekms-cryptographic-operator`. Without an HSM it generates
a root key once and keeps it, with the CRD, when the release is uninstalled. **Back up the root
key** (see the release notes printed by `helm install`).

## Values
"""


@dataclass(frozen=True)
class Entry:
    """One key of values.yaml: its path and its doc text (None when undocumented)."""

    path: tuple[str, ...]
    doc: str | None


def parse(text: str) -> list[Entry]:
    """Every key of a values.yaml text, in file order, with the `# --` doc right above it."""
    entries: list[Entry] = []
    stack: list[tuple[int, str]] = []
    doc: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            doc = None
            continue
        if m := _DOC.match(line):
            doc = [m["text"].strip()]
            continue
        if line.lstrip().startswith("#"):
            if doc is not None and (m := _MORE.match(line)):
                doc.append(m["text"].strip())
            continue
        m = _KEY.match(line)
        if not m:
            # A block list item or a continuation line: it documents nothing.
            doc = None
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), m["key"])
        entries.append(Entry(path, " ".join(doc) if doc else None))
        stack.append((indent, m["key"]))
        doc = None
    return entries


def undocumented(text: str) -> list[str]:
    """Dotted paths of keys that have no `# --` comment."""
    return [".".join(e.path) for e in parse(text) if not e.doc]


def _lookup(tree: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _schema_type(schema: dict[str, Any], path: tuple[str, ...]) -> str:
    node: dict[str, Any] = schema
    for part in path:
        node = node.get("properties", {}).get(part, {})
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        return {"k8sObject": "object", "stringMap": "map of strings", "envList": "list of EnvVar",
                "peerList": "list of NetworkPolicyPeer", "port": "int", "quantity": "quantity",
                "duration": "duration"}.get(ref, ref)
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        item = node.get("items", {}).get("type", "")
        return f"list of {item}s" if item else "list"
    return str(kind or ("enum" if "enum" in node else "any"))


def render(values_text: str, schema: dict[str, Any], chart: dict[str, Any]) -> str:
    """The README text for the given values.yaml text, schema and Chart.yaml content."""
    values = yaml.safe_load(values_text)
    out = [INTRO.format(description=" ".join(str(chart["description"]).split()), version=chart["version"],
                        app_version=chart["appVersion"], kube_version=chart["kubeVersion"])]
    header = "| Key | Type | Default | Description |\n|---|---|---|---|"
    general: list[str] = ["\n### General\n", header]
    sections: list[str] = []
    for entry in parse(values_text):
        value = _lookup(values, entry.path)
        if isinstance(value, dict) and value:
            if len(entry.path) == 1:
                sections += [f"\n### `{entry.path[0]}`\n\n{entry.doc or ''}\n", header]
            continue
        default = json.dumps(value, ensure_ascii=False).replace("|", "\\|")
        doc = (entry.doc or "").replace("|", "\\|")
        kind = _schema_type(schema, entry.path)
        if kind == "any":
            # Inside a pass-through Kubernetes object the schema says nothing; the default does.
            kind = _VALUE_TYPES.get(type(value), "any")
        row = f"| `{'.'.join(entry.path)}` | {kind} | `{default}` | {doc} |"
        (general if len(entry.path) == 1 else sections).append(row)
    return out[0] + "\n".join(general + sections) + "\n"


def current() -> str:
    """The README as generated from the chart's files now."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return render(VALUES.read_text(), json.loads(SCHEMA.read_text()), chart)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    args = parser.parse_args()
    missing = undocumented(VALUES.read_text())
    if missing:
        print("values without a `# --` comment: " + ", ".join(missing), file=sys.stderr)
        return 1
    wanted = current()
    if args.check:
        if not README.exists() or README.read_text() != wanted:
            print("charts/kubekms/README.md is out of date: run `make chart-docs`", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    print("wrote charts/kubekms/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
