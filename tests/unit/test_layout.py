"""The repository layout rules of ARCHITECTURE.md §1: plain top-level folders, import boundaries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", ["core", "operator", "api"])
def test_top_level_folders_are_not_packages(folder: str) -> None:
    assert (ROOT / folder).is_dir()
    assert not (ROOT / folder / "__init__.py").exists(), f"{folder}/__init__.py must not exist"


def test_operator_is_still_the_standard_library() -> None:
    # Run from inside the project's package roots: `operator` must resolve to the stdlib module.
    code = "import operator, sys; print(operator.__file__); print(operator.itemgetter(1)([0, 7]))"
    for cwd in (ROOT, ROOT / "operator", ROOT / "operator" / "kms_operator"):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.split()
        assert Path(out[0]).parent == Path(ast.__file__).parent, out
        assert out[1] == "7"


def _imports(package_dir: Path) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path] = names
    return found


def _violations(package_dir: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in _imports(package_dir).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_core_imports_neither_frameworks_nor_other_packages() -> None:
    assert _violations(ROOT / "core" / "kms_core", ("kopf", "aiohttp", "kms_api", "kms_operator")) == []


def test_operator_and_api_do_not_import_each_other() -> None:
    assert _violations(ROOT / "operator" / "kms_operator", ("kms_api",)) == []
    assert _violations(ROOT / "api" / "kms_api", ("kms_operator", "kopf")) == []


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "bad.py").write_text("import aiohttp.web\nfrom kopf import on\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(_violations(pkg, ("kopf", "aiohttp"))) == 2
    finally:
        ROOT = saved
