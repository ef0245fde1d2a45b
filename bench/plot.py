"""The PNG next to RESULTS.md: req/s per operation for KubeKMS, OpenBao Transit (with and without
its file audit device) and the bare endpoint, from one `make bench` run.

matplotlib is the `bench` extra of pyproject.toml (`make bench` installs it); it is imported only
here, and only when a plot is drawn. Security property: draws figures only, no tokens or keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FILENAME = "openbao.png"
# (row key, legend label, colour)
SERIES = (
    ("api", "KubeKMS", "#1f77b4"),
    ("openbao", "OpenBao Transit", "#ff7f0e"),
    ("openbao_audit", "OpenBao Transit + file audit", "#d62728"),
    ("bare", "bare aiohttp (same crypto for sign/verify)", "#7f7f7f"),
)


def render(results: dict[str, Any], path: Path) -> str:
    """Draw the headline level's rows of `results["load"]` into `path`; its file name."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    load = results["load"]
    level = max({r["connections"] for r in load} & {32}, default=max(r["connections"] for r in load))
    rows = [r for r in load if r["connections"] == level]
    series = [s for s in SERIES if any(r.get(s[0]) for r in rows)]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(rows) + 1.8))
    for i, (key, label, colour) in enumerate(series):
        positions = [n + (i - (len(series) - 1) / 2) * width for n in range(len(rows))]
        values = [r[key]["rps"] if r.get(key) else 0.0 for r in rows]
        ax.barh(positions, values, height=width, label=label, color=colour)
    ax.set_yticks(range(len(rows)), [r["scenario"] for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")  # RSA-4096 signs at a hundredth of the rate of the rest
    ax.set_xlabel("requests/s (log scale; one pinned core, best of the run's alternating runs)")
    started = str(results.get("started", ""))[:16].replace("T", " ")
    ax.set_title(
        f"KubeKMS vs OpenBao Transit, {level} connections — {started} UTC ({results.get('mode', '')} mode)"
    )
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name
