"""``lmrl eval``: a trained (or, zero-shot, a bare) policy against random and expert agents.

Example:
    $ lmrl eval runs/Maze-v0-20261128-120000 -n 50
    $ lmrl eval smollm2-135m-instruct --env lmrl/Maze-v0 -n 100
"""

from __future__ import annotations

import argparse
from typing import Any

from lmrl.errors import ConfigError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import add_set_option, positive_int


def add_commands(commands: Any) -> None:
    """Adds ``eval`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    ev = commands.add_parser(
        "eval",
        help="evaluate a run or an exported model against random and expert agents",
        description="Evaluates a trained policy (greedy and sampled) and the random and expert agents on the same seeds.",
    )
    ev.add_argument(
        "path",
        metavar="RUN_OR_EXPORT",
        help="a run directory or an exported model directory; or, zero-shot with --env, "
        "a model (catalog name or HF directory)",
    )
    ev.add_argument(
        "--env", metavar="ID", help="env id (default: the one the policy was trained on)"
    )
    ev.add_argument(
        "-n", type=positive_int, default=100, metavar="N", help="episodes per agent (default: 100)"
    )
    ev.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    ev.add_argument("--out", metavar="DIR", help="where to write the report and transcripts")
    ev.add_argument(
        "--greedy-only",
        action="store_true",
        help="skip the sampled policy's episodes (half the LM's work)",
    )
    add_set_option(ev)
    ev.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from lmrl.pipelines.evaluate import evaluate

    zero_shot = None
    if args.set:
        from lmrl.pipelines.evaluate import is_bare_model, zero_shot_config
        from lmrl.platform.config import load_config

        if not (is_bare_model(args.path) and args.env):
            raise ConfigError(
                "--set applies to zero-shot evaluation only: lmrl eval MODEL --env ID --set KEY=VALUE"
            )
        base = zero_shot_config(args.path, args.env)
        sets = [
            f"env.id={args.env}",
            f"policy.model={args.path}",
            f"policy.action_mode={base.policy.action_mode}",
        ]
        zero_shot = load_config(None, [*sets, *args.set])
    report = evaluate(
        args.path,
        args.env,
        args.n,
        seed=args.seed,
        out_dir=args.out,
        zero_shot=zero_shot,
        sampled=not args.greedy_only,
    )
    rows = out.table(
        f"evaluation: {args.path} ({args.n} episodes per agent)",
        ["agent", "success rate", "mean return"],
    )
    for label, key in (
        ("policy (greedy)", "greedy"),
        ("policy (sampled)", "sampled"),
        ("random", "random"),
        ("expert", "expert"),
    ):
        rows.add_row(
            label,
            out.rate(report.get(f"{key}_success_rate")),
            out.number(report.get(f"{key}_mean_return")),
        )
    out.console().print(rows)
    # Multi-agent: each LLM seat, in the seat plan and against random players.
    if report.get("per_agent"):
        seats = out.table(
            f"per seat ({report['env_id']}; plan: "
            + ", ".join(f"{a}={p}" for a, p in report["seat_plan"].items())
            + ")",
            ["seat", "in the plan (greedy)", "against random", "random", "expert"],
        )
        for agent, r in report["per_agent"].items():
            seats.add_row(
                agent,
                out.rate(r["greedy_success_rate"]),
                out.rate(r["vs_random_success_rate"]),
                out.rate(r["random_success_rate"]),
                out.rate(r["expert_success_rate"]),
            )
        out.console().print(seats)
    if report.get("transcripts_path"):
        print(f"transcripts: {report['transcripts_path']}")
    return 0
