"""The previous run's figures, read back from bench/RESULTS.md for a before/after comparison.

RESULTS.md is append-only history; each run's section has a "### Targets" table whose rows are
`| target | measured | ratio | required | result |`. The newest section that has one is the
"before" of the run being written. Security property: reads a Markdown file we wrote, nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_SECTION = "\n## "
_TARGETS = "### Targets"


def previous_targets(results_md: Path) -> dict[str, Any]:
    """{"section": heading, "rows": {target: (measured, ratio)}} of the newest section with targets."""
    try:
        text = results_md.read_text()
    except FileNotFoundError:
        return {}
    for section in reversed(text.split(_SECTION)[1:]):
        if _TARGETS not in section:
            continue
        heading = section.splitlines()[0].strip()
        table = section.split(_TARGETS, 1)[1].split("\n### ", 1)[0]
        rows: dict[str, tuple[str, str]] = {}
        for line in table.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0] not in ("target", "") and not cells[0].startswith("---"):
                rows[cells[0]] = (cells[1], cells[2])
        if rows:
            return {"section": heading, "rows": rows}
    return {}


def before_after(previous: dict[str, Any], rows: list[list[Any]]) -> list[list[Any]]:
    """Rows `target | before | after | required | result` for this run's target rows."""
    before: dict[str, tuple[str, str]] = previous.get("rows", {})
    out = []
    for target, measured, ratio, required, result in rows:
        was_measured, was_ratio = before.get(target, ("-", "-"))
        shown_before = was_ratio if was_ratio != "-" else was_measured
        shown_after = ratio if ratio != "-" else measured
        out.append([target, shown_before, shown_after, required, result])
    return out
