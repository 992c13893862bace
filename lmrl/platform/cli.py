"""The ``lmrl`` command line.

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
import copy
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmrl.errors import ConfigError, LmrlError, RunError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["build_parser", "main"]

#: Exit status for user errors (a bad config, an unknown env id), as argparse uses for usage errors.
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``lmrl`` command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when ``envs check`` finds a failing
        check, 2 on a user error, 130 when interrupted.
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
    """Builds the argparse parser of every subcommand."""
    from lmrl import __version__

    parser = argparse.ArgumentParser(
        prog="lmrl",
        description="Reinforcement learning with language models on Ray: text envs, LLM policies, training, evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"lmrl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    quick = commands.add_parser(
        "quickstart",
        help="train a tiny LM policy on lmrl/Maze-v0 on this machine and evaluate it",
        description="Trains a tiny language-model policy on lmrl/Maze-v0 with PPO on a local Ray, "
        "then compares it with a random and an expert agent.",
    )
    quick.add_argument(
        "--out", metavar="DIR", help="directory for the quickstart run and its results"
    )
    quick.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value of the quickstart config, e.g. --set run.stop.iterations=5",
    )
    quick.add_argument(
        "--no-warm-start",
        action="store_true",
        help="skip expert demos + SFT on Ray Train; PPO from a random tiny model (all iterations)",
    )
    quick.set_defaults(func=_cmd_quickstart)

    train = commands.add_parser(
        "train",
        help="train a policy from a YAML run config",
        description="Trains a policy from a YAML run config. `lmrl config > config.yaml` writes the defaults.",
        epilog="examples:\n  lmrl train config.yaml --set algorithm.lr=3e-4\n"
        "  lmrl train --resume runs/Maze-v0-20261128-120000 --set run.stop.iterations=40",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "config", nargs="?", metavar="CONFIG.yaml", help="the run config (optional with --resume)"
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run from its latest checkpoint, with RUN_DIR/config.yaml unless CONFIG is given",
    )
    _add_set_option(train)
    train.set_defaults(func=_cmd_train, parser=train)

    config = commands.add_parser(
        "config",
        help="print the resolved run config as YAML (the defaults without CONFIG)",
        description="Loads CONFIG (or the defaults) with --set overrides, validates it, and prints it as YAML.",
    )
    config.add_argument(
        "config", nargs="?", metavar="CONFIG.yaml", help="a run config (default: the defaults)"
    )
    _add_set_option(config)
    config.set_defaults(func=_cmd_config)

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
        "-n", type=_positive_int, default=100, metavar="N", help="episodes per agent (default: 100)"
    )
    ev.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    ev.add_argument("--out", metavar="DIR", help="where to write the report and transcripts")
    ev.add_argument("--greedy-only", action="store_true", help="skip the sampled policy's episodes (half the LM's work)")
    _add_set_option(ev)
    ev.set_defaults(func=_cmd_eval)

    _add_envs_parser(commands)
    from lmrl.platform import train_cli

    train_cli.add_commands(commands)  # pretrain, finetune, data collect
    from lmrl.platform import cluster_cli

    cluster_cli.add_commands(commands)  # submit, jobs, cluster
    from lmrl.platform import serve_cli

    serve_cli.add_commands(commands)  # serve, chat
    from lmrl.platform import bench_cli

    bench_cli.add_commands(commands)  # bench
    from lmrl.platform import models_cli

    models_cli.add_commands(commands)  # models
    return parser


def _add_envs_parser(commands: Any) -> None:
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
        type=_positive_int,
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
        "-n", type=_positive_int, default=20, metavar="N", help="episodes (default: 20)"
    )
    rollout.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    rollout.add_argument(
        "--show",
        type=_non_negative_int,
        default=1,
        metavar="K",
        help="transcripts to print (default: 1)",
    )
    rollout.add_argument(
        "--sample", action="store_true", help="with a trained policy: sample instead of greedy"
    )
    rollout.set_defaults(func=_cmd_envs_rollout)


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set algorithm.lr=0.01 (repeatable; the value is YAML)",
    )


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


# --- training and evaluation --------------------------------------------------------------


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from lmrl.pipelines.quickstart import QUICKSTART_CONFIG, quickstart
    from lmrl.pipelines.rl import RL_MODULES
    from lmrl.platform.config import apply_overrides, validate_config
    from lmrl.runtime import init_ray

    out = args.out or "runs/quickstart"
    data = apply_overrides(copy.deepcopy(QUICKSTART_CONFIG), args.overrides)
    data["run"]["output_dir"] = out
    data["run"].setdefault("name", f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    origins = {tuple(t.partition("=")[0].split(".")): f"--set {t}" for t in args.overrides}
    cfg = validate_config(data, "the quickstart config", origins)
    # The warm start's Ray Train and Ray Data actors log every epoch; their failures reach us as errors.
    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=args.no_warm_start, preload=RL_MODULES)
    results = quickstart(out, cfg, warm=not args.no_warm_start)
    table = _table(f"{results['env_id']}, {results['eval_episodes']} seeded episodes", ["agent", "success rate", "mean return"])
    if results.get("warm_start"):  # behaviour cloning alone, before PPO
        table.add_row("LM policy after SFT, before PPO (greedy)", _rate(results["warm_start"]["greedy_success_rate_before_ppo"]), "")
    table.add_row("LM policy (greedy)", _rate(results["success_rate"]), _number(results["mean_return"]))
    table.add_row("LM policy (sampled)", _rate(results["sampled_success_rate"]), "")
    table.add_row("random", _rate(results["random_success_rate"]), _number(results["random_mean_return"]))
    expert = "expert (shortest path)" if results["env_id"] == "lmrl/Maze-v0" else "expert (scripted)"
    table.add_row(expert, _rate(results["expert_success_rate"]), _number(results["expert_mean_return"]))
    console = _console()
    console.print(table)
    run_dir, export_dir = results["run_dir"], results["export_dir"]
    console.print(
        f"finished in {results['wall_seconds']:.0f} s; results: {Path(out) / 'results.json'}\n"
        "next steps:\n"
        f"  lmrl eval {run_dir} -n 200              evaluate again, on more episodes\n"
        f"  lmrl envs rollout {results['env_id']} --policy {export_dir} --show 1   watch the policy play\n"
        f"  python -c \"from transformers import AutoModelForCausalLM as M; M.from_pretrained('{export_dir}')\"\n"
        "  lmrl config > my.yaml && lmrl train my.yaml     train your own run\n"
        f"  learning curve: {run_dir}/learning_curve.png, metrics: {run_dir}/metrics.jsonl",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from lmrl.platform.config import load_config

    if args.config is None and args.resume is None:
        args.parser.error(
            "give a run config (lmrl train CONFIG.yaml) or a run to resume (--resume RUN_DIR)"
        )
    config_path = args.config
    if args.resume is not None:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise RunError(
                f"--resume expects a run directory, got {args.resume!r}, which "
                f"{'is not a directory' if run_dir.exists() else 'does not exist'}; "
                "pass the directory `lmrl train` printed, e.g. runs/<name>"
            )
        if config_path is None:
            config_path = run_dir / "config.yaml"
            if not config_path.is_file():
                raise RunError(
                    f"no config.yaml in {run_dir}; --resume expects a run directory written by "
                    "`lmrl train` (or pass the run's CONFIG.yaml as well)"
                )
    cfg = load_config(config_path, args.set)

    _check_env_config(cfg.env.id, cfg.env.kwargs)  # seconds before Ray and the model start

    from lmrl.pipelines.rl import RL_MODULES, train
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


def _cmd_eval(args: argparse.Namespace) -> int:
    from lmrl.pipelines.evaluate import evaluate

    zero_shot = None
    if args.set:
        from lmrl.pipelines.evaluate import is_bare_model, zero_shot_config
        from lmrl.platform.config import load_config

        if not (is_bare_model(args.path) and args.env):
            raise ConfigError("--set applies to zero-shot evaluation only: lmrl eval MODEL --env ID --set KEY=VALUE")
        base = zero_shot_config(args.path, args.env)
        sets = [f"env.id={args.env}", f"policy.model={args.path}", f"policy.action_mode={base.policy.action_mode}"]
        zero_shot = load_config(None, [*sets, *args.set])
    report = evaluate(
        args.path, args.env, args.n, seed=args.seed, out_dir=args.out, zero_shot=zero_shot, sampled=not args.greedy_only
    )
    table = _table(
        f"evaluation: {args.path} ({args.n} episodes per agent)",
        ["agent", "success rate", "mean return"],
    )
    for label, key in (
        ("policy (greedy)", "greedy"),
        ("policy (sampled)", "sampled"),
        ("random", "random"),
        ("expert", "expert"),
    ):
        table.add_row(
            label,
            _rate(report.get(f"{key}_success_rate")),
            _number(report.get(f"{key}_mean_return")),
        )
    _console().print(table)
    if report.get("per_agent"):  # multi-agent: each LLM seat, in the seat plan and against random players
        seats = _table(
            f"per seat ({report['env_id']}; plan: "
            + ", ".join(f"{a}={p}" for a, p in report["seat_plan"].items())
            + ")",
            ["seat", "in the plan (greedy)", "against random", "random", "expert"],
        )
        for agent, r in report["per_agent"].items():
            seats.add_row(
                agent,
                _rate(r["greedy_success_rate"]),
                _rate(r["vs_random_success_rate"]),
                _rate(r["random_success_rate"]),
                _rate(r["expert_success_rate"]),
            )
        _console().print(seats)
    if report.get("transcripts_path"):
        print(f"transcripts: {report['transcripts_path']}")
    return 0


# --- envs -----------------------------------------------------------------------------------


def _cmd_envs_list(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog

    table = _table("lmrl envs", ["id", "action mode", "step limit", "description"])
    table.columns[0].no_wrap = True
    # Suite ids whose extra is missing are listed too, with the install command;
    # multi-agent envs come after the single-agent ones.
    ids = catalog.list_envs(include_unavailable=True, kinds=catalog.ENV_KINDS)
    infos = [catalog.env_info(env_id) for env_id in ids]
    for info in sorted(infos, key=lambda i: (i["kind"] in ("aec", "parallel"), i["id"])):
        mode, doc = str(info.get("default_action_mode") or "-"), _first_line(info.get("doc", ""))
        if "agents" in info:
            mode += " (multi-agent)"
            doc = _plain(f"[{info['kind']}: {', '.join(info['agents'])}] ") + doc
        table.add_row(info["id"], mode, _cell(info.get("max_episode_steps")), doc)
    _console().print(table)
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
    table = _table(info["id"], ["", ""], show_header=False)
    table.add_row("entry point", str(info.get("entry_point")))
    table.add_row("default action mode", str(info.get("default_action_mode")))
    table.add_row("step limit", _cell(info.get("max_episode_steps")))
    table.add_row("observation space", observation_space)
    table.add_row("action space", action_space)
    table.add_row("registered kwargs", _cell(info.get("kwargs") or {}))
    table.add_row("constructor arguments", arguments or "-")
    _console().print(table)
    print()
    print(info.get("doc") or "(no docstring)")
    return 0


def _multiagent_info(info: dict[str, Any]) -> int:
    from lmrl.envs.multiagent import make_aec

    env = make_aec(info["id"])
    try:
        env.reset(seed=0)
        spaces = {a: (_describe_space(env.observation_space(a)), _describe_space(env.action_space(a))) for a in info["agents"]}
        arguments = _constructor_arguments(type(env.unwrapped))
    finally:
        env.close()
    table = _table(info["id"], ["", ""], show_header=False)
    table.add_row("entry point", str(info["entry_point"]))
    table.add_row("API", f"PettingZoo {'Parallel' if info['kind'] == 'parallel' else 'AEC'} (multi-agent)")
    table.add_row("agents", ", ".join(info["agents"]))
    table.add_row("default action mode", str(info.get("default_action_mode")))
    table.add_row("step limit", _cell(info.get("max_episode_steps")))
    for agent, (obs_space, act_space) in spaces.items():
        table.add_row(f"{agent}: observation space", obs_space)
        table.add_row(f"{agent}: action space", act_space)
    table.add_row("constructor arguments", arguments or "-")
    _console().print(table)
    print()
    print(info.get("doc") or "(no docstring)")
    return 0


def _cmd_envs_check(args: argparse.Namespace) -> int:
    from lmrl.envs import catalog
    from lmrl.envs.checks import check_env_id

    catalog.env_info(args.env_id)  # an unknown id is a user error (exit 2), not a failed check
    results = check_env_id(args.env_id, seed=args.seed, episodes=args.episodes)
    table = _table(f"checks: {args.env_id}", ["check", "result", "detail"])
    for result in results:
        table.add_row(result.name, "ok" if result.ok else "FAIL", _plain(str(result.detail or "")))
    _console().print(table)
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
    table = _table(
        f"rollout: {args.env_id}",
        ["policy", "episodes", "success rate", "mean return", "mean length"],
    )
    table.add_row(
        args.policy,
        str(len(lengths) or args.n),
        _rate(report.success_rate),
        _number(report.mean_return),
        _number(mean_length, 1),
    )
    _console().print(table)
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
    table = _table(f"rollout: {args.env_id} ({args.policy} in every seat)", ["agent", "episodes", "success rate", "mean return"])
    for seat in sorted(report.successes):
        table.add_row(seat, str(args.n), _rate(report.success_rate(seat)), _number(report.mean_return(seat)))
    _console().print(table)
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


# --- output helpers -------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=False)


def _table(title: str, columns: Sequence[str], show_header: bool = True) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=show_header, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def _plain(text: str) -> Any:
    """Cell text shown as is (no rich markup: env text may contain brackets)."""
    from rich.text import Text

    return Text(text)


def _cell(value: Any) -> Any:
    if value is None:
        return _plain("-")
    if isinstance(value, float):
        return _plain(_number(value))
    return _plain(str(value))


def _first_line(doc: str) -> Any:
    return _plain(next((line.strip() for line in doc.splitlines() if line.strip()), ""))


def _rate(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]``."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = []
        for key, sub in value.items():
            items.extend(_flatten(sub, f"{prefix}{key}."))
        return items
    return [(prefix.rstrip(".") or "result", value)]


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


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
