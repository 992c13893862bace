"""Time to reward: lmrl (RLlib PPO) against TRL's GRPO on the same tiny model and task.

The task is ``lmrl/Arithmetic-v0`` (level 1), one turn: the prompt is the
observation in the policy's prompt format, the completion (at most
``max_new_tokens`` tokens, temperature 1) is the answer, and the reward is
the env's own (+1 right, 0 wrong, -0.2 unparseable), computed by stepping a
real env reset to the prompt's seed. Both sides start from the same
randomly initialised tiny GPT-2 (built offline, the ``tiny`` preset), use
the same learning rate and torch threads, and get the same wall-clock
budget.

* lmrl: :func:`lmrl.pipelines.rl.builder.build_algorithm_config` (what ``lmrl
  train`` builds; generate mode), iterations of ``algo.train()``; reward =
  RLlib's ``episode_return_mean`` (last 100 episodes). Three runs: GRPO
  advantages with one importance ratio per token
  (``algorithm.advantage_estimator: grpo``, ``importance_sampling_level:
  token``, groups of 8 completions per prompt: the TRL side's method),
  first starting Ray itself (the ratio), then again on the Ray now running
  (a started cluster; ``ratio_running_ray``); and the defaults, a value head
  and whole-sequence ratios (``gae``, for reference, Ray running).
* TRL: ``GRPOTrainer`` (``use_cpu``, fp32, no KL term, as TRL defaults);
  reward = the ``reward`` TRL logs each step (the step's completions).

The target is the level TRL's reward settles at: the mean of all its
logged rewards in the second half of its budget. (Until 2026-11-28 it was the
mean of TRL's last 3 steps. On this task both sides plateau early, and that
figure moved from 0.023 to 0.083 between runs with the plateau's noise; the
time to it measured when a side's noise first spiked, not how fast it
learned.) Each side's time to reward is the first time its rolling mean (5
points) reaches the target, counted from the start of the side (set-up
included: Ray, RLlib's import and the algorithm, or the dataset, model and
trainer, with TRL's import left out) and from the first update.
The ratio is TRL's time over lmrl's (> 1: lmrl is faster).

Needs ``pip install -e '.[bench]'`` (trl); without it the script says so
and exits with status 2.

    python benchmarks/trl_compare.py            # full: 150 s per side (four sides)
    python benchmarks/trl_compare.py --quick    # 20 s per side
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ENV_ID = "lmrl/Arithmetic-v0"
ENV_KWARGS = {"level": 1}
SETTINGS = {
    "lr": 1e-3,
    "max_new_tokens": 4,
    "batch": 128,  # completions per update, both sides
    "group": 8,  # TRL: completions per prompt (GRPO's group)
    "minibatch": 64,
    "epochs": 2,
}


def env_reward(completions: list[str], seed: list[int], **_: Any) -> list[float]:
    """The env's reward of each completion (the env is reset to the prompt's seed first)."""
    import lmrl.envs

    env = lmrl.envs.make(ENV_ID, **ENV_KWARGS)
    rewards = []
    for text, s in zip(completions, seed, strict=True):
        env.reset(seed=int(s))
        text = text.split("<|endoftext|>")[0].strip()
        rewards.append(float(env.step(text)[1]))
    return rewards


def trl_side(model_dir: str, work: Path, budget_s: float, seed: int = 0) -> dict[str, Any]:
    """GRPO for ``budget_s`` seconds of training; the logged reward curve."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import lmrl.envs
    from lmrl.envs.adapter import PROMPT_FORMAT

    t0 = time.perf_counter()
    env = lmrl.envs.make(ENV_ID, **ENV_KWARGS)
    rows = []
    for s in range(seed, seed + 20_000):
        obs, _ = env.reset(seed=s)
        rows.append({"prompt": PROMPT_FORMAT.format(text=obs["text"]), "seed": s})
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    curve: list[tuple[float, float]] = []
    started: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            started["train"] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                curve.append((time.perf_counter(), float(logs["reward"])))

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - started["train"] >= budget_s:
                control.should_training_stop = True

    s = SETTINGS
    config = GRPOConfig(
        output_dir=str(work / "trl"),
        use_cpu=True,
        bf16=False,
        report_to=[],
        learning_rate=s["lr"],
        per_device_train_batch_size=s["minibatch"],  # completions per optimiser step
        num_generations=s["group"],
        max_completion_length=s["max_new_tokens"],
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        beta=0.0,
        num_iterations=s["epochs"],
        # 128 completions per generation, 2 minibatches of 64, 2 passes: lmrl's PPO settings.
        steps_per_generation=s["batch"] // s["minibatch"],
        logging_steps=1,
        save_strategy="no",
        max_steps=100_000,
        seed=seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=env_reward,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.remove_callback(PrinterCallback)  # a dict per step on stdout; the curve is kept instead
    trainer.train()
    return _curve(curve, t0, started["train"], "trl")


def lmrl_config(model_dir: str, out: Path, seed: int = 0, estimator: str = "grpo", level: str = "token"):
    """The lmrl side's run config: ``SETTINGS`` in ``lmrl train``'s terms (generate mode, driver-only)."""
    from lmrl.pipelines.config import RunConfig

    s = SETTINGS
    return RunConfig.model_validate({
        "env": {"id": ENV_ID, "kwargs": ENV_KWARGS},
        "policy": {"model": model_dir, "action_mode": "generate", "max_new_tokens": s["max_new_tokens"]},
        "algorithm": {"lr": s["lr"], "train_batch_size": s["batch"], "minibatch_size": s["minibatch"],
                      "num_epochs": s["epochs"], "entropy_coeff": 0.0, "advantage_estimator": estimator,
                      "group_size": s["group"], "importance_sampling_level": level},
        "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 16, "num_cpus": 2},
        "run": {"output_dir": str(out), "seed": seed, "progress": False, "eval_episodes": 0},
    })  # fmt: skip


def lmrl_side(
    model_dir: str,
    work: Path,
    budget_s: float,
    seed: int = 0,
    estimator: str = "grpo",
    level: str = "token",
    name: str | None = None,
) -> dict[str, Any]:
    """lmrl's PPO (generate mode) for ``budget_s`` seconds of training; the reward per iteration.

    ``estimator`` is ``algorithm.advantage_estimator``: ``grpo`` (critic-free, groups of
    ``SETTINGS["group"]`` completions per prompt, as TRL), ``reinforce++`` (critic-free, batch
    baseline) or ``gae`` (value head). The side starts Ray if it is not running (its set-up
    then includes Ray's start); on a running Ray it only connects.
    """
    from lmrl.pipelines.rl.loop import RL_MODULES, _quiet_rllib
    from lmrl.runtime import init_ray

    # Timed from here, like `lmrl train`: Ray's start, RLlib's import (overlapping it), the build.
    t0 = time.perf_counter()
    cfg = lmrl_config(model_dir, work / f"lmrl-{estimator}", seed, estimator, level)
    init_ray(num_cpus=2, log_to_driver=False, preload=RL_MODULES)  # a no-op on a running Ray
    from lmrl.pipelines.rl.builder import build_algorithm_config

    _quiet_rllib()
    algo = build_algorithm_config(cfg, model_dir).build_algo()
    curve: list[tuple[float, float]] = []
    train_start = time.perf_counter()
    try:
        while time.perf_counter() - train_start < budget_s:
            result = algo.train()
            value = result.get("env_runners", {}).get("episode_return_mean")
            if value is not None:
                curve.append((time.perf_counter(), float(value)))
    finally:
        algo.stop()
    return _curve(curve, t0, train_start, name or f"lmrl-{estimator}")


def _curve(
    points: list[tuple[float, float]], t0: float, train_start: float, name: str
) -> dict[str, Any]:
    return {
        "name": name,
        "setup_s": round(train_start - t0, 2),
        "updates": len(points),
        "curve": [
            (round(t - t0, 2), round(r, 4)) for t, r in points
        ],  # (s since the side started, reward)
        "first_reward": points[0][1] if points else None,
        "final_reward": round(statistics.mean(r for _, r in points[-3:]), 4) if points else None,
    }


def plateau(side: dict[str, Any]) -> float | None:
    """Mean reward over the second half of the side's run (its level once it has settled)."""
    curve = side["curve"]
    if not curve:
        return None
    half = curve[-1][0] / 2
    return round(statistics.mean(r for t, r in curve if t >= half), 4)


def time_to(
    side: dict[str, Any], target: float, window: int = 5
) -> tuple[float | None, float | None]:
    """(seconds from the side's start, from its first update) until the rolling mean reaches ``target``."""
    curve = side["curve"]
    for i in range(len(curve)):
        recent = [r for _, r in curve[max(0, i - window + 1) : i + 1]]
        if statistics.mean(recent) >= target:
            return curve[i][0], round(curve[i][0] - side["setup_s"], 2)
    return None, None


def main(argv: list[str] | None = None) -> int:
    p = common.parser("trl_compare", __doc__)
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="training seconds per side (default: 150; quick: 20)",
    )
    args = p.parse_args(argv)
    started = common.setup(args)
    try:
        import trl  # noqa: F401
    except ImportError:
        print("error: trl is not installed; pip install -e '.[bench]'", file=sys.stderr)
        return 2
    budget = args.budget or (20.0 if args.quick else 150.0)
    work = Path(args.work) / f"trl_compare-{time.strftime('%H%M%S')}"
    model_dir = common.tiny_model(args.work, "tiny")
    loads = {"before_trl": common.machine()["load_average"]}
    theirs = trl_side(model_dir, work, budget)
    loads["before_lmrl"] = common.machine()["load_average"]
    import ray

    ray.shutdown()  # the first lmrl side starts Ray itself, as `lmrl train` does on a machine without one
    ours = lmrl_side(model_dir, work, budget, estimator="grpo")
    # The same run on a Ray that is already up (a started cluster, `lmrl submit`, a second run):
    # the side connects instead of starting Ray.
    loads["before_lmrl_running_ray"] = common.machine()["load_average"]
    warm = lmrl_side(model_dir, work, budget, estimator="grpo", name="lmrl-grpo-running-ray")
    loads["before_lmrl_gae"] = common.machine()["load_average"]
    with_critic = lmrl_side(model_dir, work, budget, estimator="gae", level="sequence")
    target = plateau(theirs)
    rows, times = [], {}
    sides = (
        ("lmrl PPO, grpo advantages, token ratios (starts Ray)", ours),
        ("the same, Ray already running", warm),
        ("lmrl PPO, value head (gae), sequence ratios (Ray running)", with_critic),
        ("TRL GRPO", theirs),
    )
    for label, side in sides:
        total, training = time_to(side, target) if target is not None else (None, None)
        times[side["name"]] = (total, training)
        side["time_to_target_s"], side["time_to_target_training_s"] = total, training
        side["plateau_reward"] = plateau(side)
        rows.append([label, side["setup_s"], side["updates"], side["first_reward"], side["plateau_reward"],
                     total if total is not None else "not reached", training])  # fmt: skip
    lmrl_total, trl_total = times["lmrl-grpo"][0], times["trl"][0]
    value = common.ratio(trl_total, lmrl_total) if lmrl_total else None
    gae_total = times["lmrl-gae"][0]
    warm_total = times["lmrl-grpo-running-ray"][0]
    common.report(
        "trl_compare",
        args,
        title=f"Time to reward on {ENV_ID} {ENV_KWARGS} (tiny GPT-2 from random init, {budget:g} s of training "
        f"per side; target = TRL's plateau, its mean reward over the second half, {target})",
        columns=[
            "side",
            "set-up s",
            "updates",
            "first reward",
            "plateau reward",
            "s to target",
            "s to target (training)",
        ],
        rows=rows,
        lmrl=ours,
        baseline=theirs,
        ratio_value=value,
        ratio_meaning=(
            "TRL seconds to the target reward / lmrl grpo seconds (set-up included; > 1: lmrl is faster)"
        ),
        target={
            "min": 1.0,
            "description": "lmrl reaches TRL's reward in less wall-clock time than TRL",
        },
        extra={
            "settings": SETTINGS,
            "budget_s": budget,
            "target_reward": target,
            "load_average": loads,
            "trl_version": __import__("trl").__version__,
            "lmrl_gae": with_critic,
            "ratio_gae": common.ratio(trl_total, gae_total) if gae_total and trl_total else None,
            "lmrl_running_ray": warm,
            "ratio_running_ray": common.ratio(trl_total, warm_total) if warm_total and trl_total else None,
        },  # fmt: skip
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
