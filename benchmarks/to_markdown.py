"""Prints the tables of ``benchmarks/results/*.json`` as Markdown (for BENCHMARKS.md).

python benchmarks/to_markdown.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ("generation", "rl_throughput", "trl_compare", "pretrain_throughput", "serving", "memory")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def markdown(data: dict) -> str:
    table = data["table"]
    lines = [f"**{table['title']}**", "", "| " + " | ".join(table["columns"]) + " |"]
    lines.append("|" + "---|" * len(table["columns"]))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table["rows"]]
    ratio = "-" if data["ratio"] is None else f"{data['ratio']:.3f}"
    target = data.get("target")
    verdict = (
        f" — target ≥ {target['min']:g}: **{'met' if target['met'] else 'missed'}**"
        if target
        else ""
    )
    m = data["machine"]
    lines += [
        "",
        f"Ratio **{ratio}** = {data['ratio_meaning']}{verdict}. "
        f"Run {data['when']}, {data.get('wall_seconds', '?')} s, load average {m['load_average']} "
        f"on {m['cpus']} CPUs.",
    ]
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results")
    for name in ORDER:
        path = folder / f"{name}.json"
        if path.is_file():
            print(f"### {name}\n\n{markdown(json.loads(path.read_text()))}\n")


if __name__ == "__main__":
    main()
