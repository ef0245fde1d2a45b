"""Import rules import-linter cannot state: it sees an external package only as a whole, so it can
forbid `aiohttp` but not `aiohttp.web` alone. `kms_kube` may use aiohttp's client and never its
server; this reads every module's imports from its syntax tree (nothing is imported).
The layer contracts themselves are in pyproject.toml `[tool.importlinter]` (`make lint`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, and every `aiohttp.<x>` attribute it reaches."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "aiohttp":
            names.add(f"aiohttp.{node.attr}")
    return names


def _violations(package: Path, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for name in sorted(_imported(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(root)}: {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("core/kms_kube", ("aiohttp.web", "aiohttp.web_app", "aiohttp.web_request", "kopf")),
        ("core/kms_core", ("aiohttp", "kopf", "kubernetes", "kms_kube")),
    ],
)
def test_forbidden_imports(package: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(ROOT / package, forbidden) == []


def test_the_scan_sees_each_form_of_import(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import aiohttp.web\nfrom aiohttp import web\nimport aiohttp\nx = aiohttp.web.Application\n"
    )
    (tmp_path / "good.py").write_text("import aiohttp\nfrom aiohttp import ClientSession\n")
    found = _violations(tmp_path, ("aiohttp.web",), root=tmp_path)
    assert found == ["bad.py: aiohttp.web"], found
