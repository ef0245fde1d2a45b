"""`helm test` runs the chart's round-trip Pod against the installed release."""

from __future__ import annotations

from kindsuite import NAMESPACE, RELEASE, helm


def test_helm_test_passes() -> None:
    result = helm("test", RELEASE, "--namespace", NAMESPACE, "--logs", "--timeout", "5m", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: key" in result.stdout
    # A second run works too: the first deleted its hook key (and its material) on success.
    again = helm("test", RELEASE, "--namespace", NAMESPACE, "--timeout", "5m", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
