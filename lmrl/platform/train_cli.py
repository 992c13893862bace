"""``lmrl pretrain``, ``lmrl finetune`` and ``lmrl data collect``.

Registered on the main parser by :func:`add_commands`. Like every lmrl
command, these import torch and Ray only when they run, and print any
:class:`~lmrl.errors.LmrlError` as one line (exit status 2).

Example:
    $ lmrl data collect lmrl/Maze-v0 --policy expert -n 200 -o demos.parquet
    $ lmrl finetune examples/train/sft_maze.yaml
    $ lmrl pretrain examples/train/pretrain_envs.yaml --set training.steps=400
    $ lmrl pretrain --resume runs/pretrain-20261128-120000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmrl.errors import ConfigError, RunError

__all__ = ["add_commands"]

_RESUME_FIXED = ("task", "data", "tokenizer", "model")


def add_commands(commands: Any) -> None:
    """Adds ``pretrain``, ``finetune`` and ``data`` to the ``lmrl`` subcommands.

    Args:
        commands: The ``add_subparsers()`` object of the main parser.
    """
    for name, help_text, description in (
        (
            "pretrain",
            "pretrain a causal LM on text with Ray Train",
            "Pretrains a causal LM with Ray Train (N workers; gloo on CPU, NCCL on GPU) on text, "
            "JSONL or Parquet. RUN_DIR/model is an HF directory usable as policy.model.",
        ),
        (
            "finetune",
            "supervised fine-tuning (sft) or a reward model with Ray Train",
            "Fine-tunes a model with Ray Train: task sft (loss on response tokens; behaviour cloning "
            "from `lmrl data collect` demos) or task reward_model (labels or preference pairs).",
        ),
    ):
        p = commands.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=f"examples:\n  lmrl {name} config.yaml --set training.steps=400\n"
            f"  lmrl {name} --resume runs/{name}-20261128-120000\n"
            f"  lmrl {name} config.yaml --dry-run     check config and data, write nothing",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="the config (optional with --resume)")
        p.add_argument(
            "--resume",
            metavar="RUN_DIR",
            help="continue a run from its latest checkpoint (its own config.yaml, plus any --set)",
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. --set training.lr=3e-4 (repeatable; the value is YAML)",
        )
        p.add_argument(
            "--dry-run", action="store_true", help="validate the config and every data row, then stop"
        )
        p.set_defaults(func=_cmd_train, parser=p, command_name=name)

    data = commands.add_parser(
        "data", help="collect training data from the envs", description="Training data tools."
    )
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    collect = sub.add_parser(
        "collect",
        help="play episodes with an agent and write them as Parquet (prompt, response, reward, ...)",
        description="Plays N episodes with a scripted agent or a trained policy and writes one row "
        "per step: prompt (the policy's prompt format), response, reward, turn, episode_id, env_id, ...",
    )
    collect.add_argument("env_id", metavar="ENV_ID")
    collect.add_argument(
        "--policy",
        default="expert",
        metavar="expert|random|PATH",
        help="a scripted agent, or a run / exported model directory (default: expert)",
    )
    collect.add_argument("-n", type=_positive_int, default=100, metavar="N", help="episodes (default: 100)")
    collect.add_argument("-o", "--out", required=True, metavar="OUT.parquet", help="the Parquet file to write")
    collect.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)")
    collect.add_argument("--sample", action="store_true", help="with a trained policy: sample instead of greedy")
    collect.add_argument(
        "--opponent",
        default=None,
        metavar="expert|random|PATH",
        help="multi-agent envs: who plays the other seats; the policy then plays one seat per episode, "
        "in turn, and only its moves are written (default: the policy plays every seat)",
    )
    collect.set_defaults(func=_cmd_collect)
    pairs = sub.add_parser(
        "pairs",
        help="preference pairs (expert action over another) from collected episodes, for reward models",
        description="Turns `lmrl data collect` output into prompt/chosen/rejected rows: the expert's "
        "action is chosen over another admissible action drawn at random.",
    )
    pairs.add_argument("source", metavar="EPISODES.parquet", help="a file written by `lmrl data collect`")
    pairs.add_argument("-o", "--out", required=True, metavar="OUT.parquet", help="the Parquet file to write")
    pairs.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the rejected draws (default: 0)")
    pairs.set_defaults(func=_cmd_pairs)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _schema(name: str):
    from lmrl.pipelines.train.config import FinetuneConfig, PretrainConfig

    return PretrainConfig if name == "pretrain" else FinetuneConfig


def _cmd_train(args: argparse.Namespace) -> int:
    from lmrl.platform.config import load_config_as

    if args.config is None and args.resume is None:
        args.parser.error(f"give a config (lmrl {args.command_name} CONFIG.yaml) or a run to resume (--resume RUN_DIR)")
    schema = _schema(args.command_name)
    config_path = args.config
    if args.resume is not None:
        run = Path(args.resume)
        if not (run / "data.json").is_file():
            raise RunError(
                f"--resume expects a run directory written by `lmrl {args.command_name}`, got {args.resume!r}"
                f"{'' if run.is_dir() else ', which does not exist'}; pass the directory it printed"
            )
        saved = load_config_as(schema, run / "config.yaml")
        config_path = config_path or run / "config.yaml"
    cfg = load_config_as(schema, config_path, args.set)
    if args.resume is not None:
        for key in _RESUME_FIXED:
            if hasattr(cfg, key) and getattr(cfg, key) != getattr(saved, key):
                raise ConfigError(
                    f"`{key}` differs from the run's own config.yaml; a resumed run keeps its {key} "
                    "(start a new run to change it)"
                )
    if args.dry_run:
        return _dry_run(cfg)

    from lmrl.pipelines.train.job import run_job
    from lmrl.runtime import init_ray

    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=False)
    run = run_job(cfg, resume=args.resume)
    _print_summary(run, args.command_name)
    return 0


def _dry_run(cfg) -> int:
    from lmrl.pipelines.train.job import prepare

    prepared = prepare(cfg)
    table = _table(f"{prepared.task}: config and data are valid (nothing written)", ["", ""])
    table.add_row("row kind", prepared.spec.kind)
    for name, s in prepared.summaries.items():
        table.add_row(f"{name} files", ", ".join(s["files"]))
        table.add_row(f"{name} rows", f"{s['rows']} ({s['split_rows']['train']} train, {s['split_rows']['eval']} held out)")
        table.add_row(f"{name} tokens", str(s["tokens"]))
    table.add_row("tokenizer", f"{len(prepared.tokenizer)} tokens")
    table.add_row("model", prepared.model_source or f"{sum(p.numel() for p in prepared.init_model.parameters()):,} parameters (new)")
    _console().print(table)
    return 0


def _print_summary(run: Path, command: str) -> None:
    import json

    summary = json.loads((run / "summary.json").read_text())
    first, last = summary.get("eval_first", {}), summary.get("eval_last", {})
    table = _table(f"{command}: {run}", ["", "start", "end"])
    for key, label in (("eval_loss", "held-out loss"), ("eval_ppl", "held-out perplexity"), ("eval_accuracy", "held-out accuracy")):
        if key in last:
            table.add_row(label, _num(first.get(key)), _num(last.get(key)))
    table.add_row("steps", "", str(summary["steps"]))
    table.add_row("tokens", "", f"{summary.get('tokens') or 0:,}")
    table.add_row("worker-group starts", "", str(summary.get("attempts", 1)))
    _console().print(table)
    model = summary["model_dir"]
    hint = (
        f"  lmrl train config.yaml --set policy.model={model}     RL from this model\n"
        if summary.get("task") != "reward_model"
        else f"  lmrl train config.yaml --set reward.model={model}     the env's reward from this model\n"
    )
    print(f"model: {model}\nnext:\n{hint}  learning curve: {run}/loss_curve.png, metrics: {run}/metrics.jsonl")


def _cmd_collect(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog
    from lmrl.envs.multiagent import is_multiagent
    from lmrl.pipelines.train.collect import collect

    if not is_multiagent(args.env_id):
        catalog.env_info(args.env_id)  # an unknown id fails before anything runs
    result = collect(
        args.env_id, args.policy, args.n, args.out, seed=args.seed, greedy=not args.sample,
        progress=sys.stderr.isatty(), opponent=args.opponent,
    )  # fmt: skip
    table = _table(f"collected: {result['path']}", ["env", "policy", "episodes", "rows", "success rate", "mean return"])
    table.add_row(
        args.env_id,
        args.policy if args.opponent is None else f"{args.policy} against {args.opponent}",
        str(result["episodes"]),
        str(result["rows"]),
        f"{100 * result['success_rate']:.1f}%",
        f"{result['mean_return']:.3f}",
    )
    _console().print(table)
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from lmrl.errors import DataError
    from lmrl.pipelines.train.collect import preference_pairs

    if not Path(args.source).is_file():
        raise DataError(f"{args.source}: no such file; pass a Parquet file from `lmrl data collect`")
    result = preference_pairs(args.source, args.out, seed=args.seed)
    print(f"wrote {result['rows']} preference pairs to {result['path']}")
    return 0


def _console():
    from rich.console import Console

    return Console(soft_wrap=True)


def _table(title: str, columns: list[str]):
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=any(columns))
    for column in columns:
        table.add_column(column)
    return table


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
