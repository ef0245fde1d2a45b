"""Generate the chart's CRD template from crds/, the one source of the KmsKey CRD.

The chart installs the CRD from templates/ (not Helm's crds/ folder, which Helm never upgrades
or removes) so that `crds.enabled` can turn it off and `crds.keep` can protect it on uninstall:
deleting the CRD would delete every KmsKey, and with them the keys' identities.

Usage: python charts/tools/chart_crds.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "crds" / "kmskeys.kubekms.io.yaml"
TARGET = ROOT / "charts" / "kubekms" / "templates" / "crds.yaml"

HEADER = """\
{{- /*
Generated from crds/kmskeys.kubekms.io.yaml by `make chart-crds`. Do not edit: a test fails
when this file drifts from the source.
*/}}
{{- if .Values.crds.enabled }}
"""
FOOTER = "{{- end }}\n"


def _metadata_block(annotations: dict[str, Any], labels: dict[str, Any]) -> str:
    """The metadata additions: the source's own annotations and labels plus the chart's.

    The labels go through the chart's `kubekms.labelMap`, which writes every key once: the source's
    `app.kubernetes.io/name` and the chart's own must not both appear (kustomize refuses that).
    """
    lines = ["  annotations:"]
    lines += [f"    {k}: {json.dumps(str(v))}" for k, v in annotations.items()]
    lines += [
        "    {{- if .Values.crds.keep }}",
        "    helm.sh/resource-policy: keep",
        "    {{- end }}",
        "  labels:",
    ]
    extra = dict(labels)
    component = str(extra.pop("app.kubernetes.io/component", "crd"))
    pairs = " ".join(f"{json.dumps(str(k))} {json.dumps(str(v))}" for k, v in extra.items())
    lines.append(
        f'    {{{{- include "kubekms.labelMap" (dict "ctx" . "component" {json.dumps(component)}'
        f' "extra" (dict {pairs})) | nindent 4 }}}}'
    )
    return "\n".join(lines) + "\n"


def render(source_text: str) -> str:
    """The template text for a CRD file (one or more documents)."""
    if "{{" in source_text:
        # Helm would evaluate it; the CRD has no reason to contain template syntax.
        raise ValueError("the CRD source contains '{{', which Helm would treat as a template")
    parts: list[str] = []
    for doc in yaml.safe_load_all(source_text):
        if not doc:
            continue
        if doc.get("kind") != "CustomResourceDefinition":
            raise ValueError(f"unexpected kind in the CRD source: {doc.get('kind')!r}")
        meta = doc["metadata"]
        annotations = meta.pop("annotations", None) or {}
        labels = meta.pop("labels", None) or {}
        body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
        marker = "\nmetadata:\n"
        cut = body.index(marker) + len(marker)
        parts.append(body[:cut] + _metadata_block(annotations, labels) + body[cut:])
    if not parts:
        raise ValueError("the CRD source holds no document")
    return HEADER + "---\n".join(parts) + FOOTER


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the template is out of date")
    args = parser.parse_args()
    wanted = render(SOURCE.read_text())
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run `make chart-crds`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
