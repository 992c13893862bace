"""``lmrl train`` (RL with RLlib), ``lmrl pretrain`` and ``lmrl finetune`` (Ray Train), and ``lmrl config``.

The three training commands share one :func:`_cmd_train` and one resume
rule: ``--resume RUN_DIR`` takes a directory such a command wrote (its state
file, :func:`lmrl.pipelines.run_dir.read_state`), its own ``config.yaml``
unless a config is given, plus any ``--set``; a pretrain or finetune run
keeps its task, data, tokenizer and model. Like every lmrl command, these
import torch and Ray only when they run.

Example:
    $ lmrl config > config.yaml
    $ lmrl train config.yaml --set algorithm.lr=3e-4
    $ lmrl train --resume runs/Maze-v0-20261128-120000 --set run.stop.iterations=40
    $ lmrl finetune examples/train/sft_maze.yaml
    $ lmrl pretrain --resume runs/pretrain-20261128-120000
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmrl.errors import ConfigError, RunError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import add_set_option


def add_rl_commands(commands: Any) -> None:
    """Adds ``train`` and ``config`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    train = commands.add_parser(
        "train",
        help="train a policy from a YAML run config",
        description="Trains a policy from a YAML run config. `lmrl config > config.yaml` writes the defaults.",
        epilog="examples:\n  lmrl train config.yaml --set algorithm.lr=3e-4\n"
        "  lmrl train --resume runs/Maze-v0-20261128-120000 --set run.stop.iterations=40",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="the run config (optional with --resume)")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run from its latest checkpoint, with RUN_DIR/config.yaml unless CONFIG is given",
    )
    add_set_option(train)
    train.set_defaults(func=_cmd_train, parser=train, command_name="train", dry_run=False)

    config = commands.add_parser(
        "config",
        help="print the resolved run config as YAML (the defaults without CONFIG)",
        description="Loads CONFIG (or the defaults) with --set overrides, validates it, and prints it as YAML.",
    )
    config.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="a run config (default: the defaults)")
    add_set_option(config)
    config.set_defaults(func=_cmd_config)


def add_lm_commands(commands: Any) -> None:
    """Adds ``pretrain`` and ``finetune`` (Ray Train) to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
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
        add_set_option(p, help_text="override a config value, e.g. --set training.lr=3e-4 (repeatable; the value is YAML)")
        p.add_argument("--dry-run", action="store_true", help="validate the config and every data row, then stop")
        p.set_defaults(func=_cmd_train, parser=p, command_name=name)


# --- one training command ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Trainer:
    """What differs between the training commands; :func:`_cmd_train` does the rest."""

    state_file: str  # the file only a started run has (run_dir.check_free / read_state)
    written_by: str  # the commands that write such run directories, for messages
    fixed: tuple[str, ...]  # config sections a resumed run keeps
    load: Callable[[str | Path | None, list[str]], Any]  # config path, --set -> validated config
    run: Callable[[Any, argparse.Namespace], int]  # validated config, args -> exit status


def _trainer(command: str) -> _Trainer:
    if command == "train":
        from lmrl.pipelines.rl.loop import STATE_FILE
        from lmrl.platform.config import load_config

        return _Trainer(STATE_FILE, "`lmrl train`", (), load_config, _run_rl)
    from lmrl.pipelines.lm_train.config import FinetuneConfig, PretrainConfig
    from lmrl.pipelines.lm_train.job import DATA_FILE
    from lmrl.platform.config import load_config_as

    schema = PretrainConfig if command == "pretrain" else FinetuneConfig

    def load(path: str | Path | None, overrides: list[str]) -> Any:
        return load_config_as(schema, path, overrides)

    fixed = ("task", "data", "tokenizer", "model", "lora")
    return _Trainer(DATA_FILE, "`lmrl pretrain` or `lmrl finetune`", fixed, load, _run_lm)


def _cmd_train(args: argparse.Namespace) -> int:
    from lmrl.pipelines.run_dir import CONFIG_FILE

    command = args.command_name
    if args.config is None and args.resume is None:
        what = "a run config" if command == "train" else "a config"
        args.parser.error(f"give {what} (lmrl {command} CONFIG.yaml) or a run to resume (--resume RUN_DIR)")
    trainer = _trainer(command)
    config_path = args.config
    if args.resume is not None:
        config_path = _resume_config(args.resume, args.config, command, trainer)
    cfg = trainer.load(config_path, args.set)
    if args.resume is not None and trainer.fixed:
        saved = trainer.load(Path(args.resume) / CONFIG_FILE, [])
        for key in trainer.fixed:
            if hasattr(cfg, key) and getattr(cfg, key) != getattr(saved, key):
                raise ConfigError(
                    f"`{key}` differs from the run's own config.yaml; a resumed run keeps its {key} "
                    "(start a new run to change it)"
                )
    return trainer.run(cfg, args)


def _resume_config(resume: str, config: str | None, command: str, trainer: _Trainer) -> str | Path:
    """The resume rule: ``resume`` is a run directory the command wrote; returns the config to load.

    Args:
        resume: The ``--resume`` argument.
        config: The ``CONFIG.yaml`` argument, if given (else the run's own config.yaml).
        command: The command resuming (``train``, ``pretrain``, ``finetune``).
        trainer: What that command keeps in a run directory.

    Raises:
        RunError: ``resume`` is no such directory, or it has no config.yaml and no config was given.
    """
    from lmrl.pipelines.run_dir import CONFIG_FILE, read_state

    run = Path(resume)
    if not run.is_dir():
        raise RunError(
            f"--resume expects a run directory, got {resume!r}, which "
            f"{'is not a directory' if run.exists() else 'does not exist'}; "
            f"pass the directory `lmrl {command}` printed, e.g. runs/<name>"
        )
    if config is None and not (run / CONFIG_FILE).is_file():
        raise RunError(
            f"no config.yaml in {run}; --resume expects a run directory written by "
            f"`lmrl {command}` (or pass the run's CONFIG.yaml as well)"
        )
    read_state(run, trainer.state_file, trainer.written_by)
    return config if config is not None else run / CONFIG_FILE


def _run_rl(cfg: Any, args: argparse.Namespace) -> int:
    _check_env_config(cfg.env.id, cfg.env.kwargs)  # seconds before Ray and the model start

    from lmrl.pipelines.rl.loop import RL_MODULES, train
    from lmrl.runtime import init_ray

    warm = cfg.warm_start.enabled and args.resume is None
    # The warm start's Ray Train and Ray Data actors log every epoch; their failures reach us as errors.
    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=not warm, preload=RL_MODULES)
    if warm:  # expert demos -> SFT -> PPO from the cloned model
        from lmrl.pipelines.quickstart import train_with_warm_start

        run_dir = train_with_warm_start(cfg)
    else:
        run_dir = train(cfg, resume=args.resume)
    print(f"run directory: {run_dir}")
    print(f"next: lmrl eval {run_dir}")
    return 0


def _run_lm(cfg: Any, args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(cfg)

    from lmrl.pipelines.lm_train.job import run_job
    from lmrl.runtime import init_ray

    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=False)
    run = run_job(cfg, resume=args.resume)
    _print_summary(run, args.command_name)
    return 0


def _check_env_config(env_id: str, kwargs: dict[str, Any]) -> None:
    """Makes the configured env once, so a wrong id or kwarg fails as a one-line error."""
    from lmrl.envs import catalog

    catalog.env_info(env_id)
    try:
        catalog.make(env_id, **kwargs).close()
    except ConfigError as exc:  # the env rejected a value
        raise ConfigError(f"`env.kwargs` of {env_id}: {' '.join(str(exc).split())}") from None
    except TypeError as exc:  # an unexpected keyword argument of the env constructor
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"`env.kwargs` {kwargs!r} do not fit {env_id}: {detail}; "
            f"`lmrl envs info {env_id}` lists its constructor arguments"
        ) from None


def _cmd_config(args: argparse.Namespace) -> int:
    from lmrl.platform.config import dump_config, load_config

    sys.stdout.write(dump_config(load_config(args.config, args.set)))
    return 0


# --- pretrain / finetune output ---------------------------------------------------------------


def _dry_run(cfg: Any) -> int:
    from lmrl.pipelines.lm_train.job import prepare

    prepared = prepare(cfg)
    table = out.table(f"{prepared.task}: config and data are valid (nothing written)", ["", ""], show_header=False)
    table.add_row("row kind", prepared.spec.kind)
    for name, s in prepared.summaries.items():
        table.add_row(f"{name} files", ", ".join(s["files"]))
        table.add_row(f"{name} rows", f"{s['rows']} ({s['split_rows']['train']} train, {s['split_rows']['eval']} held out)")
        table.add_row(f"{name} tokens", str(s["tokens"]))
    table.add_row("tokenizer", f"{len(prepared.tokenizer)} tokens")
    table.add_row("model", prepared.model_source or f"{sum(p.numel() for p in prepared.init_model.parameters()):,} parameters (new)")
    if getattr(cfg, "lora", None) is not None:
        table.add_row("lora", f"r {cfg.lora.r}, alpha {cfg.lora.alpha:g}, {cfg.lora.target_modules} (merged into model/)")
    if prepared.rl_format is not None:
        table.add_row("rows rendered for", f"{prepared.rl_format['model']} ({prepared.rl_format['adapter']['action_mode']} mode)")
    out.console(soft_wrap=True).print(table)
    return 0


def _print_summary(run: Path, command: str) -> None:
    summary = json.loads((run / "summary.json").read_text())
    first, last = summary.get("eval_first", {}), summary.get("eval_last", {})
    table = out.table(f"{command}: {run}", ["", "start", "end"])
    for key, label in (("eval_loss", "held-out loss"), ("eval_ppl", "held-out perplexity"), ("eval_accuracy", "held-out accuracy")):
        if key in last:
            table.add_row(label, _num(first.get(key)), _num(last.get(key)))
    table.add_row("steps", "", str(summary["steps"]))
    table.add_row("tokens", "", f"{summary.get('tokens') or 0:,}")
    table.add_row("worker-group starts", "", str(summary.get("attempts", 1)))
    out.console(soft_wrap=True).print(table)
    model = summary["model_dir"]
    hint = (
        f"  lmrl train config.yaml --set policy.model={model}     RL from this model\n"
        if summary.get("task") != "reward_model"
        else f"  lmrl train config.yaml --set reward.model={model}     the env's reward from this model\n"
    )
    print(f"model: {model}\nnext:\n{hint}  learning curve: {run}/loss_curve.png, metrics: {run}/metrics.jsonl")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
