"""Schema fuzzing with schemathesis against /openapi.json of a live `kubekms-api` process.

Every operation is exercised (coverage, fuzzing and stateful phases); the checks are: no 5xx, every
response conforms to its documented schema, status code and content type. `make test` runs
KUBEKMS_FUZZ_EXAMPLES=20 examples per operation; `make fuzz` runs many more.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from fixtures.api import ADMIN
from fixtures.hardening import start_hardened
from kms_api.infisical.routes import ROUTES

EXAMPLES = int(os.environ.get("KUBEKMS_FUZZ_EXAMPLES", "20"))
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is not installed: `make deps` installs the test extras"
    handle = start_hardened(tmp_path, "--rate-limit-rps", "0")
    try:
        result = subprocess.run(
            [cli, "run", f"{handle.url}/openapi.json", "--header", f"Authorization: Bearer {ADMIN}",
             "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--request-timeout", "30",
             "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")],
            capture_output=True, text=True, timeout=1800, check=False, cwd=tmp_path,
        )  # fmt: skip
    finally:
        assert handle.stop() == 0, handle.logs()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    # Every operation of the document was selected and exercised.
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert selected[1] == selected[2] == tested[1] and int(tested[1]) >= len(ROUTES) - 1, output[-3000:]
    assert '"status":500' not in handle.logs() and "Traceback" not in handle.logs()
