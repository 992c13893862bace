"""What every benchmark script shares: arguments, the machine, models built offline, tables, JSON.

Each script under ``benchmarks/`` measures the lmrl side and its baseline in
the same run, interleaving repeats where it can (a shared machine drifts;
ratios hold better than absolute times), and writes
``OUT/<name>.json`` with ``lmrl``, ``baseline``, ``ratio`` and ``target``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Where ``--quick`` runs go unless ``--out`` says otherwise (git-ignored: see ``benchmarks/.gitignore``).
QUICK_RESULTS = RESULTS / "quick"
WORK = ROOT / "runs" / "bench"


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: ``--quick``, ``--out``, ``--work``."""
    p = argparse.ArgumentParser(
        prog=f"benchmarks/{name}.py", description=(doc or "").split("\n\n")[0]
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes: seconds, for tests and smoke runs"
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"where the JSON goes (default: {RESULTS}; with --quick: {QUICK_RESULTS}). "
        "A --quick run never overwrites the JSON of a full run",
    )
    p.add_argument(
        "--work", default=str(WORK), help=f"scratch space: models, runs (default: {WORK})"
    )
    p.set_defaults(benchmark=name)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads on every side (default: 1; on a busy shared 2-core machine two threads "
        "spin-wait on each other and run ~10x slower, see BENCHMARKS.md)",
    )
    return p


def tool(name: str) -> str:
    """The path of a console script installed beside this interpreter (e.g. ``py-spy``).

    A venv's scripts sit next to its ``python``; looking them up there works when the venv is
    not activated (``.venv/bin/lmrl bench``), where a bare name on ``PATH`` would not.

    Args:
        name: The script's name.

    Raises:
        SystemExit: Neither beside ``sys.executable`` nor on ``PATH``.
    """
    import shutil

    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(
            f"error: `{name}` is not installed beside {sys.executable} nor on PATH; "
            f"{sys.executable} -m pip install {name}"
        )
    return found


def out_dir(args: argparse.Namespace) -> Path:
    """Where this run's JSON goes: ``--out``, else the quick folder for ``--quick``, else the results.

    Args:
        args: Parsed arguments with ``out`` (None when not given) and ``quick``.
    """
    if args.out:
        return Path(args.out)
    return QUICK_RESULTS if args.quick else RESULTS


def check_out(path: Path, quick: bool) -> None:
    """Refuses to let a quick run overwrite the JSON of a full run.

    Args:
        path: The JSON file the run is about to write.
        quick: Whether this run is a ``--quick`` one.

    Raises:
        SystemExit: ``path`` holds a full run (``"quick": false``) and this run is quick.
    """
    if not quick or not path.is_file():
        return
    try:
        recorded_quick = json.loads(path.read_text()).get("quick", False)
    except (ValueError, AttributeError):
        recorded_quick = False  # unreadable: treat it as a recorded result, keep it
    if not recorded_quick:
        raise SystemExit(
            f"error: {path} holds a full run; a --quick run does not overwrite it. "
            f"Leave out --out (quick runs go to {QUICK_RESULTS}) or pass another --out"
        )


def setup(args: argparse.Namespace) -> float:
    """Applies ``--threads`` (this process and the Ray workers it starts); returns the start time.

    Also checks, before anything is measured, that a quick run will not overwrite a full run's JSON.
    """
    if getattr(args, "benchmark", None):
        check_out(out_dir(args) / f"{args.benchmark}.json", bool(args.quick))
    import torch

    torch.set_num_threads(max(1, args.threads))
    os.environ["OMP_NUM_THREADS"] = str(max(1, args.threads))
    return time.perf_counter()


def machine() -> dict[str, Any]:
    """The machine the numbers came from (load average included: the machine may be shared)."""
    import torch

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    return statistics.median(_timed(fn) for _ in range(repeats))


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall seconds per function, the functions taking turns (so drift hits both sides alike)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            times[key].append(_timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tiny_model(work: str | Path, preset: str = "tiny", seed: int = 0) -> str:
    """An HF directory with a preset GPT-2 and a BPE tokenizer trained on env text; built once, offline.

    The same recipe as ``tests/conftest.py``'s ``tiny_model_dir`` (and ``lmrl train``'s presets).
    """
    path = Path(work) / "models" / f"{preset}-{seed}"
    if (path / "config.json").is_file():
        return str(path)
    import lmrl.envs
    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import PRESETS, build_preset, train_tokenizer

    tokenizer = train_tokenizer(
        env_corpus([e for e in lmrl.envs.list_envs() if e.startswith("lmrl/")], episodes=8),
        vocab_size=PRESETS[preset].vocab_size,
    )
    model = build_preset(preset, tokenizer, seed=seed)
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(path)
    return str(path)


def ratio(lmrl_value: float | None, baseline_value: float | None) -> float | None:
    """``lmrl / baseline`` rounded, or None when a side is missing or zero."""
    if not lmrl_value or not baseline_value:
        return None
    return round(float(lmrl_value) / float(baseline_value), 3)


def report(
    name: str,
    args: argparse.Namespace,
    *,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    lmrl: dict[str, Any],
    baseline: dict[str, Any],
    ratio_value: float | None,
    ratio_meaning: str,
    target: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    started: float | None = None,
) -> Path:
    """Prints the table and writes ``OUT/<name>.json``; returns its path.

    Args:
        name: The benchmark's name (the JSON file's stem).
        args: The parsed arguments (``quick``, ``out``).
        title: Table title.
        columns: Table columns.
        rows: Table rows (cells are printed with ``str``; floats with 4 significant digits).
        lmrl: The lmrl side's headline figures.
        baseline: The baseline side's headline figures.
        ratio_value: The headline ratio.
        ratio_meaning: What the ratio divides, e.g. ``"lmrl tokens/s / transformers generate tokens/s"``.
        target: ``{"min": 0.9, "description": ...}`` when the issue sets a target; ``met`` and
            ``applies_to`` (the full sizes: a ``--quick`` run is not judged against it) are filled in.
        extra: Anything else worth keeping (configs, curves, profiles).
        started: ``time.perf_counter()`` at the start, for the wall time.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(c) for c in row))
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    console.print(table)
    verdict = ""
    if target is not None:
        target = dict(target)
        target["met"] = ratio_value is not None and ratio_value >= target["min"]
        target["applies_to"] = "full sizes"  # a quick run is a smoke test, see BENCHMARKS.md
        if args.quick:
            verdict = (f" (target >= {target['min']} is for the full sizes; this quick run is "
                       f"{'above' if target['met'] else 'below'} it)")  # fmt: skip
        else:
            verdict = f" (target >= {target['min']}: {'met' if target['met'] else 'MISSED'})"
    shown = "-" if ratio_value is None else f"{ratio_value:.3f}"
    console.print(f"ratio {shown} = {ratio_meaning}{verdict}", highlight=False)
    data = {
        "benchmark": name,
        "quick": bool(args.quick),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "lmrl": lmrl,
        "baseline": baseline,
        "ratio": ratio_value,
        "ratio_meaning": ratio_meaning,
        "target": target,
        "table": {
            "title": title,
            "columns": list(columns),
            "rows": [[_plain(c) for c in r] for r in rows],
        },
        **(
            {"wall_seconds": round(time.perf_counter() - started, 1)} if started is not None else {}
        ),
        **(extra or {}),
    }
    out = out_dir(args)
    path = out / f"{name}.json"
    check_out(path, bool(args.quick))
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"wrote {path}", highlight=False)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)
