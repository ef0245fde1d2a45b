"""docs/architecture.md and README's "Repository layout" name only paths and modules that exist.

Modules get renamed and moved; this keeps the map of the code from pointing at old places.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATH = re.compile(r"(?<![\w/])((?:api|core|operator)/kms_\w+(?:/[\w.]+)*/?)")
MODULE = re.compile(r"`(kms_(?:core|kube|api|operator)(?:\.\w+)+)")


def _layout_text() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Repository layout") :]


def _documents() -> dict[str, str]:
    return {"docs/architecture.md": (ROOT / "docs" / "architecture.md").read_text(), "README": _layout_text()}


TOPS = {"kms_core": "core", "kms_kube": "core", "kms_api": "api", "kms_operator": "operator"}


def _source(parts: list[str]) -> Path | None:
    """The file of module `parts` in this checkout. Resolved by path, not by the import system:
    an editable install elsewhere could otherwise answer for a module removed here."""
    base = ROOT / TOPS[parts[0]] / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    # `kms_api.modes.MODES` names an attribute: the longest module prefix must hold it.
    for end in range(len(parts), 0, -1):
        if _source(parts[:end]) is not None:
            if end == len(parts):
                return True
            return hasattr(importlib.import_module(".".join(parts[:end])), parts[end])
    return False


@pytest.mark.parametrize("doc", sorted(_documents()))
def test_named_paths_exist(doc: str) -> None:
    text = _documents()[doc]
    paths = set(PATH.findall(text))
    assert paths, "the check found no paths: the pattern is wrong"
    missing = sorted(p for p in paths if "<" not in p and not (ROOT / p.rstrip(".")).exists())
    assert missing == [], missing


@pytest.mark.parametrize("doc", sorted(_documents()))
def test_named_modules_exist(doc: str) -> None:
    modules = set(MODULE.findall(_documents()[doc]))
    assert modules, "the check found no modules: the pattern is wrong"
    assert sorted(m for m in modules if not _module_exists(m)) == []


def test_the_layout_tree_names_each_kms_api_package() -> None:
    tree = _layout_text()
    packages = [p.name for p in (ROOT / "api" / "kms_api").iterdir() if (p / "__init__.py").exists()]
    assert packages and sorted(p for p in packages if f"  {p}/" not in tree) == []


def test_the_checks_can_fail() -> None:
    assert not _module_exists("kms_core.keycache")
    assert not _module_exists("kms_api.modes.NO_SUCH_NAME")
    assert _module_exists("kms_api.modes.MODES")
