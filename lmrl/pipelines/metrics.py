"""Run metrics: one JSON line per iteration, and the learning-curve PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

CURVE_KEYS = ("episode_return_mean", "success_rate")


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Appends one JSON object as a line (non-finite floats become null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(clean) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Reads every row of a metrics file (missing file: no rows)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_learning_curve(rows: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Writes a PNG of return and success rate against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(10, 3.5))
    for ax, key in zip(axes, CURVE_KEYS, strict=True):
        pts = [(r["timesteps"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_xlabel("env steps")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
