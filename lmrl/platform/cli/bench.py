"""``lmrl bench``: runs the side-by-side benchmarks in ``benchmarks/``.

Each benchmark is a script of its own (``benchmarks/NAME.py``) that measures
lmrl and its baseline in one run and writes ``OUT/NAME.json``; this command
runs the chosen ones one after another, each in a fresh process (no Ray or
torch state carries over), and prints a summary of the ratios and targets.
The benchmarks live in the source checkout, next to the package.

Example:
    $ lmrl bench --quick
    $ lmrl bench --only generation serving --out /tmp/bench
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lmrl.errors import ConfigError, RunError
from lmrl.platform.cli import output

#: Benchmark name -> what it compares, in the order ``lmrl bench`` runs them (fast ones first).
BENCHMARKS: dict[str, str] = {
    "generation": "lm_ops.sample vs transformers generate (tokens/s)",
    "choose_scoring": "choose-mode scoring, shared prompt KV cache vs prompt repeated per candidate",
    "rl_throughput": "RLlib PPO vs a bare PPO loop (env steps/s, learner samples/s)",
    "startup": "a training run's time to its first update: lmrl's Ray start vs ray.init defaults",
    "trl_compare": "time to reward, lmrl PPO vs TRL GRPO (needs the bench extra)",
    "pretrain_throughput": "Ray Train 1 and 2 workers vs a bare loop (tokens/s, MFU)",
    "serving": "Serve with and without batching vs in-process decode (latency, requests/s)",
    "memory": "peak RSS of lmrl quickstart and of a serve replica",
    "real_model": "SmolLM2-135M: sampler vs generate, choose scoring, a LoRA RL run's steps/s and RSS",
    "trl_compare_smollm2": "time to reward on SmolLM2-135M + LoRA, lmrl GRPO vs TRL GRPO, 3 runs each "
    "(needs the bench extra; about 40 minutes on a 2-core CPU)",
}

#: Benchmarks that are a variant of another script: name -> (script, extra arguments).
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "trl_compare_smollm2": ("trl_compare", ["--model", "smollm2-135m-instruct"]),
}

#: Exit status of a benchmark script that cannot run here (e.g. trl is not installed).
EXIT_SKIPPED = 2


def add_commands(commands: Any) -> None:
    """Adds ``bench`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    names = "\n".join(f"  {name:<20} {what}" for name, what in BENCHMARKS.items())
    bench = commands.add_parser(
        "bench",
        help="run the side-by-side benchmarks (lmrl vs its baselines) and write JSON results",
        description="Runs benchmarks/*.py one after another; each measures lmrl and its baseline in one "
        "run, prints a table and writes OUT/NAME.json. See BENCHMARKS.md.",
        epilog=f"benchmarks:\n{names}\n\nexamples:\n  lmrl bench --quick\n"
        "  lmrl bench --only generation serving --out /tmp/bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--quick", action="store_true", help="tiny sizes: each benchmark in seconds to a minute"
    )
    bench.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"run only these ({', '.join(BENCHMARKS)})"
    )
    bench.add_argument(
        "--out",
        metavar="DIR",
        help="where the JSON goes (default: benchmarks/results; with --quick: "
        "benchmarks/results/quick, git-ignored). A quick run never overwrites a full run's JSON",
    )
    bench.add_argument(
        "--work", metavar="DIR", help="scratch space for models and runs (default: runs/bench)"
    )
    bench.set_defaults(func=_cmd_bench)


def benchmarks_dir() -> Path:
    """The ``benchmarks/`` folder of the source checkout lmrl runs from.

    Raises:
        RunError: lmrl was installed without its source tree.
    """
    import lmrl

    path = Path(lmrl.__file__).resolve().parents[1] / "benchmarks"
    if not (path / "common.py").is_file():
        raise RunError(
            f"no benchmarks at {path}; they ship with the source checkout: "
            "git clone the repository and pip install -e '.[bench]' there"
        )
    return path


def results_dir(folder: Path, out: str | None, quick: bool) -> Path:
    """Where ``lmrl bench`` writes: ``out`` if given, else ``results/quick`` for quick runs, else ``results``.

    Quick-size results never land next to the recorded full runs by default (the scripts also
    refuse to overwrite a full run's JSON with a quick one, whatever ``--out`` says).

    Args:
        folder: The ``benchmarks/`` folder (see :func:`benchmarks_dir`).
        out: The ``--out`` argument, or None.
        quick: Whether this is a ``--quick`` run.
    """
    if out:
        return Path(out)
    return folder / "results" / "quick" if quick else folder / "results"


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    for name in only:
        if name not in BENCHMARKS:
            close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise ConfigError(
                f"unknown benchmark `{name}`; choose from {', '.join(BENCHMARKS)}.{hint}"
            )
    return [name for name in BENCHMARKS if name in only]


def _cmd_bench(args: argparse.Namespace) -> int:
    names = _selected(args.only)  # a wrong name fails before anything runs
    folder = benchmarks_dir()
    out = results_dir(folder, args.out, args.quick)
    summary: list[dict[str, Any]] = []
    for name in names:
        script, extra = VARIANTS.get(name, (name, []))
        cmd = [sys.executable, str(folder / f"{script}.py"), *extra, "--out", str(out)]
        if args.work:
            cmd += ["--work", args.work]
        if args.quick:
            cmd.append("--quick")
        print(f"\n=== {name}: {BENCHMARKS[name]}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        row: dict[str, Any] = {
            "benchmark": name,
            "seconds": round(time.perf_counter() - started, 1),
        }
        result = out / f"{name}.json"
        if code == 0 and result.is_file():
            data = json.loads(result.read_text())
            target = data.get("target") or {}
            row.update(status="ok", ratio=data.get("ratio"), ratio_meaning=data.get("ratio_meaning"),
                       target_min=target.get("min"), target_met=target.get("met"), json=str(result))  # fmt: skip
        else:
            row["status"] = "skipped" if code == EXIT_SKIPPED else f"failed (exit {code})"
        summary.append(row)
    _print_summary(summary, args.quick)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps({"quick": args.quick, "benchmarks": summary}, indent=2) + "\n"
    )
    print(f"summary: {out / 'summary.json'}")
    return 1 if any(r["status"].startswith("failed") for r in summary) else 0


def _print_summary(summary: list[dict[str, Any]], quick: bool) -> None:
    table = output.table("lmrl bench", ["benchmark", "status", "ratio", "target", "seconds", "ratio is"])
    for r in summary:
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.3f}"
        target = "-"
        if r.get("target_min") is not None:
            if quick:  # the targets are for the full sizes (BENCHMARKS.md)
                target = f">= {r['target_min']:g} (full sizes); quick: {'above' if r.get('target_met') else 'below'}"
            else:
                target = f">= {r['target_min']:g}: {'met' if r.get('target_met') else 'MISSED'}"
        table.add_row(
            r["benchmark"],
            r["status"],
            ratio,
            target,
            f"{r['seconds']:.0f}",
            output.plain(r.get("ratio_meaning") or ""),
        )
    output.console(width=None if sys.stdout.isatty() else 160).print(table)
