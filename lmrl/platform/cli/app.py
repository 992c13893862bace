"""The ``lmrl`` command line: the top-level parser and the one place errors become exit codes.

Each command group registers its subcommands from its own module
(:mod:`~lmrl.platform.cli.envs`, :mod:`~lmrl.platform.cli.train`, ...).
Subcommands import what they need when they run, so ``lmrl --help`` stays
fast and never touches torch or Ray. Any :class:`~lmrl.errors.LmrlError`
prints ``error: <one line>`` on stderr and exits with status 2; usage errors
keep argparse's behaviour (status 2 with the usage line).

Example:
    $ lmrl quickstart
    $ lmrl envs list
    $ lmrl train config.yaml --set algorithm.lr=3e-4 --set run.stop.iterations=50
    $ lmrl eval runs/Maze-v0-20261128-120000 -n 50
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lmrl.errors import LmrlError
from lmrl.platform.cli import (
    bench,
    cluster,
    data,
    envs,
    evaluate,
    jobs,
    models,
    quickstart,
    serve,
    train,
)
from lmrl.platform.cli.args import Parser

#: Exit status for user errors (a bad config, an unknown env id), as argparse uses for usage errors.
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``lmrl`` command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when ``envs check`` finds a failing
        check, 2 on a user error, 130 when interrupted.

    Example:
        >>> main(["envs", "list"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from lmrl.platform.errors import format_error

    try:
        return int(args.func(args) or 0)
    except LmrlError as exc:
        sys.stdout.flush()
        print(f"error: {format_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `lmrl envs list | head`: the reader left; not an error
        _silence_stdout()
        return 0


def build_parser() -> argparse.ArgumentParser:
    """Builds the argparse parser of every subcommand, in the order ``lmrl --help`` lists them."""
    from lmrl import __version__

    parser = argparse.ArgumentParser(
        prog="lmrl",
        description="Reinforcement learning with language models on Ray: text envs, LLM policies, training, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"lmrl {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    quickstart.add_commands(commands)  # quickstart
    train.add_rl_commands(commands)  # train, config
    evaluate.add_commands(commands)  # eval
    envs.add_commands(commands)  # envs list|info|check|play|rollout
    train.add_lm_commands(commands)  # pretrain, finetune
    data.add_commands(commands)  # data collect|pairs
    jobs.add_commands(commands)  # submit, jobs
    cluster.add_commands(commands)  # cluster
    serve.add_commands(commands)  # serve, chat
    bench.add_commands(commands)  # bench
    models.add_commands(commands)  # models
    return parser


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
