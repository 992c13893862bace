"""``lmrl quickstart``: a tiny LM policy trained on lmrl/Maze-v0 on this machine, then evaluated.

Example:
    $ lmrl quickstart
    $ lmrl quickstart --no-warm-start --set run.stop.iterations=5 --out /tmp/qs
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

from lmrl.platform.cli import output
from lmrl.platform.cli.args import add_set_option


def add_commands(commands: Any) -> None:
    """Adds ``quickstart`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    quick = commands.add_parser(
        "quickstart",
        help="train a tiny LM policy on lmrl/Maze-v0 on this machine and evaluate it",
        description="Trains a tiny language-model policy on lmrl/Maze-v0 with PPO on a local Ray, "
        "then compares it with a random and an expert agent.",
    )
    quick.add_argument(
        "--out", metavar="DIR", help="directory for the quickstart run and its results"
    )
    add_set_option(
        quick,
        help_text="override a value of the quickstart config, e.g. --set run.stop.iterations=5",
        dest="overrides",
    )
    quick.add_argument(
        "--no-warm-start",
        action="store_true",
        help="skip expert demos + SFT on Ray Train; PPO from a random tiny model (all iterations)",
    )
    quick.set_defaults(func=_cmd_quickstart)


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from lmrl.pipelines.quickstart import QUICKSTART_CONFIG, quickstart
    from lmrl.pipelines.rl.loop import RL_MODULES
    from lmrl.platform.config import apply_overrides, validate_config
    from lmrl.runtime import init_ray

    out = args.out or "runs/quickstart"
    data = apply_overrides(copy.deepcopy(QUICKSTART_CONFIG), args.overrides)
    data["run"]["output_dir"] = out
    data["run"].setdefault("name", f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    origins = {tuple(t.partition("=")[0].split(".")): f"--set {t}" for t in args.overrides}
    cfg = validate_config(data, "the quickstart config", origins)
    # The warm start's Ray Train and Ray Data actors log every epoch; their failures reach us as errors.
    init_ray(
        cfg.resources.address,
        cfg.resources.num_cpus,
        log_to_driver=args.no_warm_start,
        preload=RL_MODULES,
    )
    results = quickstart(out, cfg, warm=not args.no_warm_start)
    rows = output.table(
        f"{results['env_id']}, {results['eval_episodes']} seeded episodes",
        ["agent", "success rate", "mean return"],
    )
    if results.get("warm_start"):  # behaviour cloning alone, before PPO
        rows.add_row(
            "LM policy after SFT, before PPO (greedy)",
            output.rate(results["warm_start"]["greedy_success_rate_before_ppo"]),
            "",
        )
    rows.add_row(
        "LM policy (greedy)",
        output.rate(results["success_rate"]),
        output.number(results["mean_return"]),
    )
    rows.add_row("LM policy (sampled)", output.rate(results["sampled_success_rate"]), "")
    rows.add_row(
        "random",
        output.rate(results["random_success_rate"]),
        output.number(results["random_mean_return"]),
    )
    expert = (
        "expert (shortest path)" if results["env_id"] == "lmrl/Maze-v0" else "expert (scripted)"
    )
    rows.add_row(
        expert,
        output.rate(results["expert_success_rate"]),
        output.number(results["expert_mean_return"]),
    )
    screen = output.console()
    screen.print(rows)
    run_dir, export_dir = results["run_dir"], results["export_dir"]
    screen.print(
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
