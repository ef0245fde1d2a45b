"""Every package declares its face with `__all__`, and the face is true.

A package whose `__init__` re-exports names lists exactly those (each one must resolve); a package
whose face is its modules lists exactly its public submodules, so a module added, renamed or
removed without updating the face fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("core", "api", "operator")


def _packages() -> list[str]:
    found = []
    for top in TOPS:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            found.append(".".join(init.parent.relative_to(ROOT / top).parts))
    return found


def _public_submodules(package: str) -> set[str]:
    module = importlib.import_module(package)
    return {m.name for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_")}


def test_every_top_level_package_is_covered() -> None:
    assert {"kms_core", "kms_kube", "kms_api", "kms_operator"} <= set(_packages())


@pytest.mark.parametrize("package", _packages())
def test_the_face_is_declared_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    face = getattr(module, "__all__", None)
    assert isinstance(face, list) and face, f"{package} has no __all__"
    assert len(face) == len(set(face)), f"{package}.__all__ repeats a name"
    submodules = _public_submodules(package)
    for name in face:
        assert name in vars(module) or name in submodules, f"{package}.__all__ names unknown {name!r}"
    if not any(name in vars(module) and name not in submodules for name in face):
        # A face made of modules: exactly the public submodules.
        assert set(face) == submodules, (package, sorted(set(face) ^ submodules))
