"""The reconciler serves a key only with every version from 1 to at least the one it reported."""

from __future__ import annotations

import pytest

from kms_operator.context import Degraded
from kms_operator.reconcile import _check_versions

BLOB = b"sealed"


def test_complete_versions_pass_whether_or_not_the_key_reported_one() -> None:
    _check_versions("s", {1: BLOB}, None)
    _check_versions("s", {1: BLOB, 2: BLOB}, 2)
    _check_versions("s", {1: BLOB, 2: BLOB, 3: BLOB}, 2)  # rotated in the Secret, status not yet


def test_a_newest_version_gone_is_never_replaced_by_an_older_one() -> None:
    with pytest.raises(Degraded) as info:
        _check_versions("s", {1: BLOB, 2: BLOB}, 3)
    assert info.value.reason == "MaterialMissing" and "version 3" in info.value.message


def test_a_gap_in_the_versions_degrades_the_key() -> None:
    with pytest.raises(Degraded) as info:
        _check_versions("s", {1: BLOB, 3: BLOB}, 3)
    assert info.value.reason == "MaterialMissing" and "[2]" in info.value.message


def test_status_merge_patch_removes_nested_fields() -> None:
    """A field gone from a nested status object (policy.rotationPeriod once the period is
    cleared) must be nulled in the merge patch, or the API server keeps the old value."""
    from kms_operator.status import merge_patch

    old = {"policy": {"rotationPeriod": "1d", "minDecryptionVersion": 1}, "nextRotationTime": "x",
           "version": 1}
    new = {"policy": {"minDecryptionVersion": 2}, "version": 1, "versions": [{"version": 1}]}
    assert merge_patch(old, new) == {
        "policy": {"rotationPeriod": None, "minDecryptionVersion": 2},
        "nextRotationTime": None,
        "version": 1,
        "versions": [{"version": 1}],
    }
