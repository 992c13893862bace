"""``lmrl data``: training data from the envs (``collect``) and preference pairs from it (``pairs``).

Example:
    $ lmrl data collect lmrl/Maze-v0 --policy expert -n 200 -o demos.parquet
    $ lmrl data collect lmrl/Maze-v0 --model smollm2-135m-instruct -n 200 -o chat_demos.parquet
    $ lmrl data pairs demos.parquet -o pairs.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmrl.errors import ConfigError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import positive_int


def add_commands(commands: Any) -> None:
    """Adds ``data`` and its actions to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    data = commands.add_parser(
        "data", help="collect training data from the envs", description="Training data tools."
    )
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    collect = sub.add_parser(
        "collect",
        help="play episodes with an agent and write them as Parquet (prompt, response, reward, ...)",
        description="Plays N episodes with a scripted agent or a trained policy and writes one row "
        "per step: prompt (the policy's prompt format), response, reward, turn, episode_id, env_id, ... "
        "With --model or --like, prompt and response are exactly what `lmrl train` with that policy "
        "acts with (a pretrained instruct model: its chat template), for SFT before RL.",
    )
    collect.add_argument("env_id", metavar="ENV_ID")
    collect.add_argument(
        "--policy",
        default="expert",
        metavar="expert|random|PATH",
        help="a scripted agent, or a run / exported model directory (default: expert)",
    )
    collect.add_argument(
        "-n", type=positive_int, default=100, metavar="N", help="episodes (default: 100)"
    )
    collect.add_argument(
        "-o", "--out", required=True, metavar="OUT.parquet", help="the Parquet file to write"
    )
    collect.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    collect.add_argument(
        "--sample", action="store_true", help="with a trained policy: sample instead of greedy"
    )
    collect.add_argument(
        "--opponent",
        default=None,
        metavar="expert|random|PATH",
        help="multi-agent envs: who plays the other seats; the policy then plays one seat per episode, "
        "in turn, and only its moves are written (default: the policy plays every seat)",
    )
    fmt = collect.add_mutually_exclusive_group()
    fmt.add_argument(
        "--model",
        default=None,
        metavar="NAME|DIR",
        help="write prompt/response as `lmrl train` with policy.model NAME would act on ENV_ID (the env's "
        "action mode, every other policy setting at its default; e.g. smollm2-135m-instruct: chat prompts)",
    )
    fmt.add_argument(
        "--like",
        default=None,
        metavar="CONFIG.yaml",
        help="write prompt/response as `lmrl train CONFIG.yaml` would act (its env and policy sections; "
        "its env.id must be ENV_ID)",
    )
    collect.set_defaults(func=_cmd_collect)
    pairs = sub.add_parser(
        "pairs",
        help="preference pairs (expert action over another) from collected episodes, for reward models",
        description="Turns `lmrl data collect` output into prompt/chosen/rejected rows: the expert's "
        "action is chosen over another admissible action drawn at random.",
    )
    pairs.add_argument(
        "source", metavar="EPISODES.parquet", help="a file written by `lmrl data collect`"
    )
    pairs.add_argument(
        "-o", "--out", required=True, metavar="OUT.parquet", help="the Parquet file to write"
    )
    pairs.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the rejected draws (default: 0)"
    )
    pairs.set_defaults(func=_cmd_pairs)


def _cmd_collect(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog
    from lmrl.pipelines.lm_train.collect import collect

    catalog.env_info(args.env_id)  # an unknown id fails before anything runs
    policy_config = None
    if args.model is not None:
        from lmrl.pipelines.evaluate import zero_shot_config

        policy_config = zero_shot_config(args.model, args.env_id)
    elif args.like is not None:
        from lmrl.platform.config import load_config

        policy_config = load_config(args.like)
        if policy_config.env.id != args.env_id:
            raise ConfigError(
                f"ENV_ID {args.env_id} is not env.id ({policy_config.env.id}) of {args.like}; "
                f"collect for the env it trains on: lmrl data collect {policy_config.env.id} --like {args.like} ..."
            )
    result = collect(
        args.env_id, args.policy, args.n, args.out, seed=args.seed, greedy=not args.sample,
        progress=sys.stderr.isatty(), opponent=args.opponent, policy_config=policy_config,
    )  # fmt: skip
    title = f"collected: {result['path']}"
    if policy_config is not None:
        title += f" (prompts as `lmrl train` with policy.model {policy_config.policy.model})"
    table = out.table(title, ["env", "policy", "episodes", "rows", "success rate", "mean return"])
    table.add_row(
        args.env_id,
        args.policy if args.opponent is None else f"{args.policy} against {args.opponent}",
        str(result["episodes"]),
        str(result["rows"]),
        f"{100 * result['success_rate']:.1f}%",
        f"{result['mean_return']:.3f}",
    )
    out.console(soft_wrap=True).print(table)
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from lmrl.errors import DataError
    from lmrl.pipelines.lm_train.collect import preference_pairs

    if not Path(args.source).is_file():
        raise DataError(
            f"{args.source}: no such file; pass a Parquet file from `lmrl data collect`"
        )
    result = preference_pairs(args.source, args.out, seed=args.seed)
    print(f"wrote {result['rows']} preference pairs to {result['path']}")
    return 0
