"""The distribution the image installs (a regular, non-editable wheel) carries every package.

The Dockerfile runs `pip install --no-deps .`; no Docker engine runs here, so this builds the same
wheel and checks its contents: all three packages with every module found in the source tree, the
PEP 561 marker, and both console scripts.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_every_module_and_both_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = tmp_path.glob("kubekms-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT / top))
        for top in ("core", "operator", "api")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected, "no modules found"
    assert expected <= names, sorted(expected - names)
    assert "kms_core/py.typed" in names
    assert not any(n.split("/")[0] in {"core", "operator", "api", "tests"} for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "kubekms-api = kms_api.__main__:main" in text
    assert "kubekms-operator = kms_operator.__main__:main" in text
