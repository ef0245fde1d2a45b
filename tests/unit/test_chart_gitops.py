"""The chart is safe to render offline and apply with GitOps tools.

- No render contains key material: `helm template`, client-side dry runs and Argo CD have no
  cluster to look a live key up in, so any rendered key would overwrite the live one. The root key
  is created by the operator (optional secretKeyRef + KUBEKMS_ROOT_KEY_SECRET); the API waits for
  it (required secretKeyRef).
- Every rendered document parses with a strict YAML loader that rejects duplicate mapping keys
  (kustomize and Argo CD refuse them; PyYAML silently keeps the last).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from fixtures.helm import NAMESPACE, RELEASE, VALUE_SETS, template

B64 = re.compile(r"^[A-Za-z0-9+/]{40,}={0,2}$")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (as kustomize does)."""


def _no_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def strict_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield from node.split()


def key_like(value: str) -> bool:
    """Base64 of 32 bytes, or base64 of that (a Secret's `data` entry holding a root key)."""
    for _ in range(2):
        if not B64.match(value):
            return False
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            return False
        if len(raw) == 32:
            return True
        try:
            value = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            return False
    return False


def test_key_like_recognises_root_keys() -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    assert key_like(key) and key_like(base64.b64encode(key.encode()).decode())
    assert not key_like(base64.b64encode(bytes(31)).decode()) and not key_like("ROOT_ENCRYPTION_KEY")


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_no_render_contains_key_material_or_duplicate_keys(value_set: str) -> None:
    text = template(VALUE_SETS[value_set], "--include-crds").stdout
    docs = strict_docs(text)  # raises on any duplicate key
    assert docs
    assert not [s for d in docs for s in strings(d) if key_like(s)], "a render carries key material"
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart renders no Secret"


def test_strict_loader_rejects_a_duplicate_label() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'app'"):
        strict_docs("metadata:\n  labels:\n    app: a\n    app: b\n")


def _env(docs: list[dict[str, Any]], deployment: str) -> dict[str, dict[str, Any]]:
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_the_operator_creates_the_root_key_and_the_api_waits_for_it() -> None:
    docs = strict_docs(template({}).stdout)
    operator, api = _env(docs, f"{RELEASE}-operator"), _env(docs, f"{RELEASE}-api")
    name = f"{RELEASE}-root-key"
    assert operator["ROOT_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": name, "key": "ROOT_ENCRYPTION_KEY", "optional": True}
    assert operator["KUBEKMS_ROOT_KEY_SECRET"]["value"] == name
    assert operator["KUBEKMS_ROOT_KEY_SECRET_KEY"]["value"] == "ROOT_ENCRYPTION_KEY"
    # Required: the kubelet does not start the API before the operator created the Secret.
    required = {"name": name, "key": "ROOT_ENCRYPTION_KEY"}
    assert api["ROOT_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"] == required
    assert "KUBEKMS_ROOT_KEY_SECRET" not in api
    assert all(d["metadata"].get("namespace") in (None, NAMESPACE) for d in docs)
