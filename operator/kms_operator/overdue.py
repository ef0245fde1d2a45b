"""Keys whose scheduled rotation is past due and not yet stored: the
`kubekms_key_rotation_overdue{lateness}` gauge, as this operator sees it.

A due key is rotated in the same reconciliation that finds it due, so a key stays here only
while its rotation fails (the API server refuses the write, a conflict is being retried).

Security property: holds KmsKey names only; metric labels are the two lateness buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kms_core.metrics import KEY_ROTATION_OVERDUE

WITHIN_PERIOD = "within-period"
OVER_PERIOD = "over-period"


@dataclass
class Overdue:
    late: dict[tuple[str, str], str] = field(default_factory=dict)

    def set(self, ref: tuple[str, str], lateness: str | None) -> None:
        """Record `ref` as late by `lateness` (None: not late, or gone) and update the gauge."""
        if lateness is None:
            self.late.pop(ref, None)
        else:
            self.late[ref] = lateness
        for bucket in (WITHIN_PERIOD, OVER_PERIOD):
            count = sum(1 for v in self.late.values() if v == bucket)
            KEY_ROTATION_OVERDUE.labels(lateness=bucket).set(count)
