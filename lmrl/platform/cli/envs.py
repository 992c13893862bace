"""``lmrl envs``: list, inspect, check, play and roll out the registered text envs.

Example:
    $ lmrl envs list
    $ lmrl envs info lmrl/Maze-v0
    $ lmrl envs check lmrl/Maze-v0 --episodes 5
    $ lmrl envs rollout lmrl/TicTacToe-v0 --policy expert -n 4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from lmrl.errors import ConfigError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import non_negative_int, positive_int


def add_commands(commands: Any) -> None:
    """Adds ``envs`` and its actions to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    envs = commands.add_parser(
        "envs",
        help="list, inspect, check, play and roll out text envs",
        description="Tools for the text env catalog.",
    )
    sub = envs.add_subparsers(dest="envs_command", metavar="ACTION", required=True)

    sub.add_parser("list", help="list the registered env ids").set_defaults(func=_cmd_envs_list)

    info = sub.add_parser("info", help="show an env's documentation, spaces and arguments")
    info.add_argument("env_id", metavar="ID")
    info.set_defaults(func=_cmd_envs_info)

    check = sub.add_parser(
        "check",
        help="run the env checks (Gymnasium's check_env, determinism, agents); exit 1 on failure",
    )
    check.add_argument("env_id", metavar="ID")
    check.add_argument(
        "--episodes",
        type=positive_int,
        default=20,
        metavar="N",
        help="episodes per agent check (default: 20)",
    )
    check.add_argument("--seed", type=int, default=0, metavar="S")
    check.set_defaults(func=_cmd_envs_check)

    play = sub.add_parser(
        "play",
        help="play an env yourself in the terminal",
        description="Play one episode: type the number of an admissible action, or any text as the action; q quits.",
    )
    play.add_argument("env_id", metavar="ID")
    play.add_argument(
        "--seed", type=int, default=None, metavar="S", help="episode seed (default: random)"
    )
    play.set_defaults(func=_cmd_envs_play)

    rollout = sub.add_parser(
        "rollout",
        help="run a random, expert or trained agent for N episodes and show transcripts",
    )
    rollout.add_argument("env_id", metavar="ID")
    rollout.add_argument(
        "--policy",
        default="random",
        metavar="random|expert|PATH",
        help="a scripted agent, or a run / exported model directory (default: random)",
    )
    rollout.add_argument(
        "-n", type=positive_int, default=20, metavar="N", help="episodes (default: 20)"
    )
    rollout.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    rollout.add_argument(
        "--show",
        type=non_negative_int,
        default=1,
        metavar="K",
        help="transcripts to print (default: 1)",
    )
    rollout.add_argument(
        "--sample", action="store_true", help="with a trained policy: sample instead of greedy"
    )
    rollout.set_defaults(func=_cmd_envs_rollout)


# --- envs -----------------------------------------------------------------------------------


def _cmd_envs_list(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog

    table = out.table("lmrl envs", ["id", "action mode", "step limit", "description"])
    table.columns[0].no_wrap = True
    # Suite ids whose extra is missing are listed too, with the install command;
    # multi-agent envs come after the single-agent ones.
    ids = catalog.list_envs(include_unavailable=True, kinds=catalog.ENV_KINDS)
    infos = [catalog.env_info(env_id) for env_id in ids]
    for info in sorted(infos, key=lambda i: (i["kind"] in ("aec", "parallel"), i["id"])):
        mode, doc = str(info.get("default_action_mode") or "-"), out.first_line(info.get("doc", ""))
        if "agents" in info:
            mode += " (multi-agent)"
            doc = out.plain(f"[{info['kind']}: {', '.join(info['agents'])}] ") + doc
        table.add_row(info["id"], mode, out.cell(info.get("max_episode_steps")), doc)
    out.console().print(table)
    return 0


def _cmd_envs_info(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog

    info = catalog.env_info(args.env_id)
    if "agents" in info:
        return _multiagent_info(info)
    env = catalog.make(args.env_id)
    try:
        observation_space = _describe_space(env.observation_space)
        action_space = _describe_space(env.action_space)
        arguments = _constructor_arguments(type(env.unwrapped))
    finally:
        env.close()
    table = out.table(info["id"], ["", ""], show_header=False)
    table.add_row("entry point", str(info.get("entry_point")))
    table.add_row("default action mode", str(info.get("default_action_mode")))
    table.add_row("step limit", out.cell(info.get("max_episode_steps")))
    table.add_row("observation space", observation_space)
    table.add_row("action space", action_space)
    table.add_row("registered kwargs", out.cell(info.get("kwargs") or {}))
    table.add_row("constructor arguments", arguments or "-")
    out.console().print(table)
    print()
    print(info.get("doc") or "(no docstring)")
    return 0


def _multiagent_info(info: dict[str, Any]) -> int:
    from lmrl.envs.multiagent import make_aec

    env = make_aec(info["id"])
    try:
        env.reset(seed=0)
        spaces = {
            a: (_describe_space(env.observation_space(a)), _describe_space(env.action_space(a)))
            for a in info["agents"]
        }
        arguments = _constructor_arguments(type(env.unwrapped))
    finally:
        env.close()
    table = out.table(info["id"], ["", ""], show_header=False)
    table.add_row("entry point", str(info["entry_point"]))
    table.add_row(
        "API", f"PettingZoo {'Parallel' if info['kind'] == 'parallel' else 'AEC'} (multi-agent)"
    )
    table.add_row("agents", ", ".join(info["agents"]))
    table.add_row("default action mode", str(info.get("default_action_mode")))
    table.add_row("step limit", out.cell(info.get("max_episode_steps")))
    for agent, (obs_space, act_space) in spaces.items():
        table.add_row(f"{agent}: observation space", obs_space)
        table.add_row(f"{agent}: action space", act_space)
    table.add_row("constructor arguments", arguments or "-")
    out.console().print(table)
    print()
    print(info.get("doc") or "(no docstring)")
    return 0


def _cmd_envs_check(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog
    from lmrl.envs.checks import check_env_id

    catalog.env_info(args.env_id)  # an unknown id is a user error (exit 2), not a failed check
    results = check_env_id(args.env_id, seed=args.seed, episodes=args.episodes)
    table = out.table(f"checks: {args.env_id}", ["check", "result", "detail"])
    for result in results:
        table.add_row(
            result.name, "ok" if result.ok else "FAIL", out.plain(str(result.detail or ""))
        )
    out.console().print(table)
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
        return 1
    print(f"all {len(results)} checks passed")
    return 0


def _cmd_envs_play(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog

    if catalog.env_kind(args.env_id) != "single":
        raise ConfigError(
            f"`lmrl envs play` plays single-agent envs; `{args.env_id}` is a multi-agent env: "
            f"watch it with `lmrl envs rollout {args.env_id} --policy random`"
        )
    env = catalog.make(args.env_id)
    try:
        return _play(env, args.env_id, args.seed)
    finally:
        env.close()


def _play(env: Any, env_id: str, seed: int | None) -> int:
    """One episode by a person at the terminal (or a script on stdin)."""
    obs, info = env.reset(seed=seed)
    print(
        f"playing {env_id}" + (f" (seed {seed})" if seed is not None else "") + "; q quits",
        flush=True,
    )
    total, steps = 0.0, 0
    while True:
        print(f"\n{obs['text']}")
        actions = tuple(obs.get("actions") or ())
        for number, action in enumerate(actions, 1):
            print(f"  {number}. {action}")
        prompt = (
            "pick a number or type an action (q quits)> "
            if actions
            else "type an action (q quits)> "
        )
        line = _read_line(prompt)
        if line is None or line.strip().lower() in ("q", "quit", "exit"):
            print(f"\nquit after {steps} step{'s' if steps != 1 else ''}, return {total:+.3g}")
            return 0
        text = line.strip()
        if not text:
            continue
        if actions and text.isdigit():
            number = int(text)
            if not 1 <= number <= len(actions):
                print(f"pick a number from 1 to {len(actions)}, or type an action")
                continue
            text = actions[number - 1]
        obs, reward, terminated, truncated, info = env.step(text)
        total += float(reward)
        steps += 1
        print(f"> {text}   reward {float(reward):+.3g}")
        if terminated or truncated:
            print(f"\n{obs['text']}")
            how = (
                "success"
                if info.get("success")
                else ("step limit reached" if truncated else "failed")
            )
            print(
                f"episode over: {how}, return {total:+.3g} in {steps} step{'s' if steps != 1 else ''}"
            )
            return 0


def _read_line(prompt: str) -> str | None:
    """``input`` that returns None at end of input; echoes piped input so transcripts read well."""
    try:
        line = input(prompt)
    except EOFError:
        print()
        return None
    if not sys.stdin.isatty():
        print(line)
    return line


def _cmd_envs_rollout(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog
    from lmrl.envs.rollout import run_episodes

    if catalog.env_kind(args.env_id) != "single":  # fails on an unknown id before loading a policy
        return _multiagent_rollout(args)
    from lmrl.pipelines.agents import make_agent

    agent = make_agent(args.policy, args.seed, greedy=not args.sample)
    report = run_episodes(args.env_id, agent, args.n, seed=args.seed, keep_transcripts=args.show)
    lengths = list(report.lengths)
    mean_length = sum(lengths) / len(lengths) if lengths else float("nan")
    for index, transcript in enumerate(list(report.transcripts)[: args.show]):
        _print_transcript(index, transcript, report)
    table = out.table(
        f"rollout: {args.env_id}",
        ["policy", "episodes", "success rate", "mean return", "mean length"],
    )
    table.add_row(
        args.policy,
        str(len(lengths) or args.n),
        out.rate(report.success_rate),
        out.number(report.mean_return),
        out.number(mean_length, 1),
    )
    out.console().print(table)
    return 0


def _multiagent_rollout(args: argparse.Namespace) -> int:
    """Rollouts of a multi-agent env: --policy random|expert plays every seat."""
    from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent
    from lmrl.envs.rollout import run_episodes

    if args.policy not in ("random", "expert"):
        raise ConfigError(
            f"--policy {args.policy!r}: multi-agent rollouts take random or expert for every seat; "
            f"evaluate a trained multi-agent run with `lmrl eval RUN_DIR`"
        )
    agent = RandomMultiAgent(args.seed) if args.policy == "random" else ExpertMultiAgent()
    report = run_episodes(args.env_id, agent, args.n, seed=args.seed)
    table = out.table(
        f"rollout: {args.env_id} ({args.policy} in every seat)",
        ["agent", "episodes", "success rate", "mean return"],
    )
    for seat in sorted(report.successes):
        table.add_row(
            seat,
            str(args.n),
            out.rate(report.success_rate(seat)),
            out.number(report.mean_return(seat)),
        )
    out.console().print(table)
    return 0


def _print_transcript(index: int, transcript: Sequence[Any], report: Any) -> None:
    """Prints one episode: each observation, then the action and its reward."""
    returns = list(getattr(report, "returns", None) or [])
    successes = list(getattr(report, "successes", None) or [])
    final_texts = list(getattr(report, "final_texts", None) or [])
    seed = getattr(report, "seed", None)
    parts = [f"episode {index + 1}" + (f" (seed {seed + index})" if isinstance(seed, int) else "")]
    if index < len(returns):
        parts.append(f"return {float(returns[index]):+.3g}")
    if index < len(successes):
        parts.append("success" if successes[index] else "no success")
    print("--- " + ", ".join(parts) + " ---")
    for obs_text, action, reward in transcript:
        print(obs_text)
        print(f"> {action}   reward {float(reward):+.3g}")
    if index < len(final_texts):
        print(final_texts[index])
    print()


def _describe_space(space: Any) -> str:
    """A short description of a Gymnasium space (Text's charset repr is too long to show)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Text):
        return f"Text(length {space.min_length}..{space.max_length})"
    if isinstance(space, spaces.Dict):
        inner = ", ".join(f"{key}: {_describe_space(sub)}" for key, sub in space.spaces.items())
        return f"Dict({inner})"
    if isinstance(space, spaces.Sequence):
        return f"Sequence({_describe_space(space.feature_space)})"
    return repr(space)


def _constructor_arguments(cls: type) -> str:
    import inspect

    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return ""
    parts = []
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            parts.append(name)
            continue
        shown = repr(param.default)
        if len(shown) > 30 or "\n" in shown:
            shown = "<" + type(param.default).__name__ + ">"
        parts.append(f"{name}={shown}")
    return ", ".join(parts)
