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

**The real model** (``--model smollm2-135m-instruct``; result ``trl_compare_smollm2.json``).
Both sides train SmolLM2-135M-Instruct (the catalog's local copy, found with
:func:`lmrl.policies.models.resolve` as ``lmrl train`` does) with LoRA, and every setting comes
from lmrl's recipe for the task, ``examples/arithmetic_smollm2.yaml``, read with lmrl's own config
loader (:func:`recipe_config`; only ``run.output_dir``, ``run.seed``, ``run.progress``,
``run.eval_episodes`` and ``resources.num_cpus`` are overridden):

* lmrl: what ``lmrl train examples/arithmetic_smollm2.yaml`` runs (``resolve_auto``,
  ``prepare_model``, ``init_ray``, ``build_algorithm_config``), iterations of ``algo.train()``.
* TRL: ``GRPOTrainer(..., peft_config=LoraConfig(...))`` with the recipe's LoRA (r, alpha,
  target modules, dropout 0, as :func:`lmrl.policies.lora.apply_lora` builds it), learning rate,
  temperature (no top-k / top-p on either side), 16 new tokens, 64 completions per generation in
  groups of 8, 4 minibatches of 16, one pass, PPO clip and gradient clip, ``beta`` = the recipe's
  ``kl_ref_coeff`` (with peft TRL's KL reference is the model with the adapter disabled, as
  lmrl's), no gradient checkpointing (TRL's default is on; lmrl's recipe has it off), fp32 on CPU.
* Prompts: the recipe sets ``policy.chat: false``, so the lmrl policy's prompt is the adapter's
  plain ``prompt_format`` (``"{text}\\nAction:"``, :data:`lmrl.envs.adapter.PROMPT_FORMAT`),
  tokenised without special tokens (SmolLM2's tokenizer adds none either way, so TRL's
  ``tokenizer(prompts)`` gives the same ids). The TRL side's prompt text comes from the same
  ``adapter_config(cfg).prompt_format`` (:func:`recipe_prompt_format`), never a copy.
* Completions: lmrl's generate mode samples up to ``max_new_tokens`` tokens and stops at the
  tokenizer's EOS only (``<|im_end|>``, id 2; no stop at a newline); the env gets
  ``TextCodec.decode_action``: the ids before the first EOS, decoded with
  ``skip_special_tokens``, stripped. The env reads the *last* whole number of that text. TRL
  stops at its EOS ids (the tokenizer's plus the generation config's: also only id 2 here),
  keeps the ids up to the first EOS and decodes them with ``skip_special_tokens``. The TRL
  side's reward (:func:`recipe_reward`) decodes TRL's ``completion_ids`` with lmrl's own
  ``decode_action`` and steps a real env reset to the prompt's seed, so both sides' rewards come
  from the same parsing; it counts the completions whose text differs from TRL's own decoded text
  (``completion_text_mismatches`` in the JSON: 0 when the two cuts agree).
* Runs: ``--runs`` per side (default 3; ``--quick``: 1), taken in turns (TRL 1, lmrl 1, TRL 2,
  ...), run ``i`` of both sides with seed ``i``. Ray is shut down before the first lmrl run, which
  starts it (its start is in that run's set-up, as on a machine without Ray); later lmrl runs
  connect to that Ray (set-up without Ray's start, as on a started cluster), and TRL runs 2, 3, ...
  share the machine (and their process: the Ray driver) with that idle Ray. Idle, Ray's processes
  took about 2% of a core here; in one check on a busy machine TRL (tiny-lora) made 26-27 updates
  in 8 s with Ray up against 29-33 without, so later TRL runs may be a little slower. RLlib's
  seeding (``set_torch_seed``) turns on ``torch.use_deterministic_algorithms`` in the lmrl run's
  process, which is also the TRL runs' process: each TRL run turns it off again, as TRL runs alone
  (with it on, TRL made 9 updates where it made 31 without).
* Curve points: one per iteration on lmrl's side (sampling and its updates); on TRL's, one per
  generation, entered after the generation's last optimiser step (TRL logs it after the first) --
  and TRL stops at a generation's end, as lmrl between iterations (:func:`_trl_train`).
* Target: the median over TRL's runs of each run's plateau. Each side reports the median and the
  range (min-max) of its runs' times to the target (a run that never reaches it counts as slower
  than all that did); the ratio is TRL's median over lmrl's (> 1: lmrl is faster).
* The KL term is k3 per token averaged over tokens on both sides (lmrl's with token-level ratios,
  since 2026-12-01; before, lmrl took k3 of each completion's summed log-ratio, a far stronger
  pull to the base model on 16-token answers).
* What could not be made equal: lmrl divides a minibatch's summed token surrogate by that
  minibatch's tokens, TRL's ``dapo`` loss by the generation's tokens per optimiser step (its tokens
  / 4), so minibatches with longer answers weigh more in TRL; the prompts differ (each side
  draws its own problems from the same distribution); and lmrl's curve point is RLlib's
  ``episode_return_mean`` (the last 100 episodes), TRL's the mean of one generation (64).
  ``lmrl train`` also evaluates after training and checkpoints; the benchmark does neither.

    python benchmarks/trl_compare.py --model smollm2-135m-instruct              # 3 x 300 s per side
    python benchmarks/trl_compare.py --model smollm2-135m-instruct --quick      # 1 x 30 s per side

``--model tiny-lora`` runs the same code on the tiny preset with LoRA switched on (a wiring check,
result ``trl_compare_tiny_lora.json``).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
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

#: The real-model variant's settings: lmrl's committed recipe for this task.
RECIPE = common.ROOT / "examples" / "arithmetic_smollm2.yaml"
#: ``--model`` -> the name of the JSON it writes. ``tiny``: the comparison above; the others run
#: :data:`RECIPE`; ``tiny-lora`` on the tiny preset with LoRA on (a cheap check of that code path).
VARIANTS = {
    "tiny": "trl_compare",
    "smollm2-135m-instruct": "trl_compare_smollm2",
    "tiny-lora": "trl_compare_tiny_lora",
}
#: ``--budget`` defaults: (full, quick) training seconds per side and run.
BUDGETS = {"tiny": (150.0, 20.0), "recipe": (300.0, 30.0)}
#: ``--runs`` defaults for the recipe variants: (full, quick) runs per side.
RUNS = (3, 1)


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


def _import_trl() -> None:
    """Imports what :func:`_trl_train` uses, before a side's clock starts: TRL's import stays out of its set-up."""
    from datasets import Dataset  # noqa: F401
    from transformers import PrinterCallback, TrainerCallback  # noqa: F401
    from trl import GRPOConfig, GRPOTrainer  # noqa: F401


def _trl_train(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    config: dict[str, Any],
    reward: Callable[..., list[float]],
    budget_s: float,
    peft_config: Any = None,
    steps_per_point: int = 1,
) -> tuple[list[tuple[float, float]], float]:
    """``GRPOTrainer`` until ``budget_s`` seconds of training have passed: (reward curve, start).

    A generation's reward is logged after its first optimiser step. With ``steps_per_point``
    the generation's optimiser steps (the recipe), it enters the curve after the last of them,
    and training stops only there: one point per generation and its updates, as lmrl's
    ``algo.train()`` gives one per iteration. With 1 (the tiny comparison), at the log.
    """
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    curve: list[tuple[float, float]] = []
    started: dict[str, float] = {}
    pending: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            started["train"] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                pending[:] = [float(logs["reward"])]
            if pending and state.global_step % steps_per_point == 0:
                curve.append((time.perf_counter(), pending.pop()))

        def on_step_end(self, args, state, control, **kwargs):
            whole = state.global_step % steps_per_point == 0
            if whole and time.perf_counter() - started["train"] >= budget_s:
                control.should_training_stop = True

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=GRPOConfig(**config),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[Clock()],
        peft_config=peft_config,
    )
    trainer.remove_callback(PrinterCallback)  # a dict per step on stdout; the curve is kept instead
    trainer.train()
    return curve, started["train"]


def trl_args(settings: dict[str, Any], out: Path, seed: int) -> dict[str, Any]:
    """``GRPOConfig``'s arguments for ``settings`` (:data:`SETTINGS` or :func:`recipe_settings`)."""
    s = settings
    args = {
        "output_dir": str(out),
        "use_cpu": True,
        "bf16": False,
        "report_to": [],
        "learning_rate": s["lr"],
        "per_device_train_batch_size": s["minibatch"],  # completions per optimiser step
        "num_generations": s["group"],
        "max_completion_length": s["max_new_tokens"],
        "temperature": s.get("temperature", 1.0),
        "top_k": 0,
        "top_p": 1.0,
        "beta": s.get("beta", 0.0),
        "num_iterations": s["epochs"],
        # A generation of `batch` completions, minibatches of `minibatch`, `epochs` passes: lmrl's PPO.
        "steps_per_generation": s["batch"] // s["minibatch"],
        "logging_steps": 1,
        "save_strategy": "no",
        "max_steps": 100_000,
        "seed": seed,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    if "clip" in s:  # the recipe: lmrl's values, said out loud (TRL's defaults agree today)
        args.update(
            epsilon=s["clip"],
            max_grad_norm=s["grad_clip"],
            gradient_checkpointing=s["gradient_checkpointing"],
        )
    return args


def trl_side(model_dir: str, work: Path, budget_s: float, seed: int = 0) -> dict[str, Any]:
    """GRPO for ``budget_s`` seconds of training; the logged reward curve."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import lmrl.envs
    from lmrl.envs.adapter import PROMPT_FORMAT

    _import_trl()
    t0 = time.perf_counter()
    env = lmrl.envs.make(ENV_ID, **ENV_KWARGS)
    rows = []
    for s in range(seed, seed + 20_000):
        obs, _ = env.reset(seed=s)
        rows.append({"prompt": PROMPT_FORMAT.format(text=obs["text"]), "seed": s})
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    curve, train_start = _trl_train(
        model, tokenizer, rows, trl_args(SETTINGS, work / "trl", seed), env_reward, budget_s
    )
    return _curve(curve, t0, train_start, "trl")


def lmrl_config(
    model_dir: str, out: Path, seed: int = 0, estimator: str = "grpo", level: str = "token"
):
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
    return _train_for(algo, budget_s, t0, name or f"lmrl-{estimator}")


def _train_for(algo: Any, budget_s: float, t0: float, name: str) -> dict[str, Any]:
    """``algo.train()`` until ``budget_s`` seconds of training have passed; the reward per iteration."""
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
    return _curve(curve, t0, train_start, name)


# --- the real model: lmrl's recipe on both sides -------------------------------------------------


def recipe_config(out: Path, seed: int, model: str | None = None):
    """The recipe's run config as ``lmrl train`` resolves it, with only the run's own keys overridden.

    Args:
        out: ``run.output_dir``.
        seed: ``run.seed``.
        model: Another ``policy.model`` (with LoRA switched on), for the ``tiny-lora`` check;
            ``None`` keeps the recipe's.
    """
    from lmrl.pipelines.policy_setup import resolve_auto
    from lmrl.platform.config import load_config

    overrides = [
        f"run.output_dir={out}",
        f"run.seed={seed}",
        "run.progress=false",
        "run.eval_episodes=0",
        "resources.num_cpus=2",
    ]
    if model is not None:
        overrides += [f"policy.model={model}", "policy.lora.enabled=true"]
    return resolve_auto(load_config(RECIPE, overrides))


def recipe_settings(cfg: Any) -> dict[str, Any]:
    """What both sides take from the recipe (lmrl's defaults where it leaves a key unset)."""
    from lmrl.pipelines.policy_setup import learning_rate, lora_settings

    p, a = cfg.policy, cfg.algorithm
    return {
        "env_id": cfg.env.id,
        "env_kwargs": dict(cfg.env.kwargs),
        "model": p.model,
        "chat": p.chat,
        "lr": learning_rate(cfg),
        "temperature": p.temperature,
        "max_new_tokens": p.max_new_tokens,
        "batch": a.train_batch_size,  # completions per iteration / generation
        "group": a.group_size,
        "minibatch": a.minibatch_size,
        "epochs": a.num_epochs,
        "beta": a.kl_ref_coeff,
        "clip": a.clip_param,
        "grad_clip": a.grad_clip,
        "entropy_coeff": a.entropy_coeff,
        "gradient_checkpointing": p.gradient_checkpointing,
        "lora": lora_settings(cfg),
    }


def lora_config_args(settings: dict[str, Any]) -> dict[str, Any]:
    """``peft.LoraConfig``'s arguments: what :func:`lmrl.policies.lora.apply_lora` passes."""
    lora = settings["lora"]
    targets = lora["target_modules"]
    return {
        "r": lora["r"],
        "lora_alpha": lora["alpha"],
        "target_modules": targets if targets == "all-linear" else list(targets),
        "lora_dropout": 0.0,
        "bias": "none",
    }


def recipe_prompt_format(cfg: Any) -> str:
    """The lmrl policy's prompt format for ``cfg`` (plain text: the recipe has ``chat: false``).

    Raises:
        SystemExit: The config renders chat prompts (the TRL side would need the chat template).
    """
    from lmrl.pipelines.policy_setup import adapter_config

    adapter = adapter_config(cfg)
    if adapter.chat_system is not None:
        raise SystemExit(
            f"error: {RECIPE} renders chat prompts; this comparison needs policy.chat: false"
        )
    return adapter.prompt_format


def recipe_reward(cfg: Any, tokenizer: Any, mismatches: list[int]) -> Callable[..., list[float]]:
    """The TRL side's reward: lmrl's ``decode_action`` of each completion, stepped in a real env.

    Args:
        cfg: The recipe config (env, adapter).
        tokenizer: The policy's tokenizer.
        mismatches: Gets one entry per call: how many completions' text differed from TRL's
            own decoded text (stripped).
    """
    import lmrl.envs
    from lmrl.envs.adapter import TextCodec
    from lmrl.pipelines.policy_setup import adapter_config

    codec = TextCodec(tokenizer, adapter_config(cfg))

    def env_reward(
        completions: list[str], completion_ids: list[list[int]], seed: list[int], **_: Any
    ) -> list[float]:
        env = lmrl.envs.make(cfg.env.id, **cfg.env.kwargs)
        rewards, differ = [], 0
        for text, ids, s in zip(completions, completion_ids, seed, strict=True):
            env.reset(seed=int(s))
            action = codec.decode_action(ids)
            differ += action != text.strip()
            rewards.append(float(env.step(action)[1]))
        mismatches.append(differ)
        return rewards

    return env_reward


def trl_recipe_side(
    work: Path, budget_s: float, seed: int, name: str, model: str | None = None
) -> dict[str, Any]:
    """TRL's GRPO with LoRA on the recipe's settings for ``budget_s`` seconds of training."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import lmrl.envs
    from lmrl.policies.models import resolve

    _import_trl()
    # RLlib's seeding (in the lmrl runs before this one, same process) switches on torch's
    # deterministic algorithms; TRL in a process of its own runs without them (3.3x fewer
    # updates with them in a tiny-lora check).
    torch.use_deterministic_algorithms(False)
    t0 = time.perf_counter()
    cfg = recipe_config(work / name, seed, model)
    s = recipe_settings(cfg)
    model_dir = resolve(s["model"])  # a catalog name -> its local copy, as `lmrl train` finds it
    prompt_format = recipe_prompt_format(cfg)
    env = lmrl.envs.make(s["env_id"], **s["env_kwargs"])
    rows, n = [], 2_000  # Arithmetic level 1 has under 900 distinct problems
    for i in range(seed * n, seed * n + n):
        obs, _ = env.reset(seed=i)
        rows.append({"prompt": prompt_format.format(text=obs["text"]), "seed": i})
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    mismatches: list[int] = []
    curve, train_start = _trl_train(
        lm,
        tokenizer,
        rows,
        trl_args(s, work / name, seed),
        recipe_reward(cfg, tokenizer, mismatches),
        budget_s,
        peft_config=LoraConfig(**lora_config_args(s)),
        steps_per_point=s["batch"] // s["minibatch"] * s["epochs"],  # TRL: generate_every
    )
    side = _curve(curve, t0, train_start, name)
    side.update(seed=seed, completion_text_mismatches=sum(mismatches))
    return side


def lmrl_recipe_side(
    work: Path, budget_s: float, seed: int, name: str, model: str | None = None
) -> dict[str, Any]:
    """``lmrl train``'s steps on the recipe for ``budget_s`` seconds of training.

    Set-up as in ``lmrl train``: the config, ``prepare_model`` (the catalog's directory and its
    load check), Ray's start (or, on a running Ray, the connection), RLlib's import, the build.
    """
    from lmrl.pipelines.rl.loop import RL_MODULES, _quiet_rllib, prepare_model
    from lmrl.runtime import init_ray

    t0 = time.perf_counter()
    cfg = recipe_config(work / name, seed, model)
    model_path = prepare_model(cfg, work / name)
    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=False, preload=RL_MODULES)
    from lmrl.pipelines.rl.builder import build_algorithm_config

    _quiet_rllib()
    algo = build_algorithm_config(cfg, model_path).build_algo()
    side = _train_for(algo, budget_s, t0, name)
    side["seed"] = seed
    return side


# --- shared by both variants ---------------------------------------------------------------------


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


def spread(times: list[float | None]) -> dict[str, Any]:
    """Median and range of runs' times to the target; ``None``: the run never reached it.

    A run that never reached the target counts as slower than every run that did, so the
    median is ``None`` only when at least half the runs missed it; ``max`` is ``None`` when any
    run missed it.
    """
    reached = sorted(t for t in times if t is not None)
    ordered = reached + [float("inf")] * (len(times) - len(reached))
    median = statistics.median(ordered) if ordered else float("inf")
    return {
        "median": None if median == float("inf") else round(median, 2),
        "min": reached[0] if reached else None,
        "max": reached[-1] if reached and len(reached) == len(times) else None,
        "reached": len(reached),
        "runs": len(times),
    }


def _shown(s: dict[str, Any]) -> str:
    def cell(v: float | None) -> str:
        return "not reached" if v is None else f"{v:g}"

    return f"{cell(s['median'])} ({cell(s['min'])}-{cell(s['max'])})"


def parse_args(argv: list[str] | None = None):
    """The arguments, with ``--budget``, ``--runs`` and the JSON's name filled in per variant."""
    p = common.parser("trl_compare", __doc__)
    p.add_argument(
        "--model",
        choices=list(VARIANTS),
        default="tiny",
        help="tiny: the random-init GPT-2 comparison (default); smollm2-135m-instruct: the real "
        f"model on lmrl's recipe {RECIPE.relative_to(common.ROOT)}, LoRA on both sides; "
        "tiny-lora: the recipe's code path on the tiny model (a wiring check)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="training seconds per side (and run) (default: 150, quick 20; real model: 300, quick 30)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="recipe variants: runs per side, taken in turns (default: 3; quick: 1)",
    )
    args = p.parse_args(argv)
    tiny = args.model == "tiny"
    if tiny and args.runs is not None:
        p.error("--runs applies to --model smollm2-135m-instruct (and tiny-lora), not to tiny")
    if args.runs is not None and args.runs < 1:
        p.error(f"--runs must be at least 1, got {args.runs}")
    if args.budget is not None and args.budget <= 0:
        p.error(f"--budget must be positive, got {args.budget:g}")
    full, quick = BUDGETS["tiny" if tiny else "recipe"]
    args.budget = args.budget or (quick if args.quick else full)
    if not tiny:
        args.runs = args.runs or RUNS[bool(args.quick)]
    args.benchmark = VARIANTS[args.model]  # the JSON's name (and the quick-run check's)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = common.setup(args)
    try:
        import trl  # noqa: F401
    except ImportError:
        print("error: trl is not installed; pip install -e '.[bench]'", file=sys.stderr)
        return 2
    if args.model == "tiny":
        return _main_tiny(args, started)
    return _main_recipe(args, started)


def _main_recipe(args: Any, started: float) -> int:
    """The recipe on both sides, ``args.runs`` runs each, taken in turns."""
    import ray

    name, budget = args.benchmark, args.budget
    work = Path(args.work) / f"{name}-{time.strftime('%H%M%S')}"
    model = common.tiny_model(args.work, "tiny") if args.model == "tiny-lora" else None
    cfg = recipe_config(work, 0, model)
    settings = recipe_settings(cfg)
    theirs: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    loads: dict[str, list[float]] = {}
    for i in range(args.runs):
        loads[f"before_trl_{i + 1}"] = common.machine()["load_average"]
        theirs.append(trl_recipe_side(work, budget, i, f"trl-{i + 1}", model))
        gc.collect()
        if i == 0:
            ray.shutdown()  # the first lmrl run starts Ray itself, as `lmrl train` on a bare machine
        loads[f"before_lmrl_{i + 1}"] = common.machine()["load_average"]
        side = lmrl_recipe_side(work, budget, i, f"lmrl-{i + 1}", model)
        side["starts_ray"] = i == 0
        ours.append(side)
        gc.collect()
    plateaus = [p for p in (plateau(s) for s in theirs) if p is not None]
    target = round(statistics.median(plateaus), 4) if plateaus else None
    rows = []
    for side in [*theirs, *ours]:
        total, training = time_to(side, target) if target is not None else (None, None)
        side["time_to_target_s"], side["time_to_target_training_s"] = total, training
        side["plateau_reward"] = plateau(side)
    summary: dict[str, dict[str, Any]] = {}
    for label, runs in (("TRL GRPO + LoRA", theirs), ("lmrl PPO (recipe) + LoRA", ours)):
        total = spread([s["time_to_target_s"] for s in runs])
        training = spread([s["time_to_target_training_s"] for s in runs])
        summary[label] = {
            "time_to_target_s": total,
            "time_to_target_training_s": training,
            "runs": runs,
        }
        for s in runs:
            rows.append([label, s["seed"], s["setup_s"], s["updates"], s["first_reward"], s["plateau_reward"],
                         s["time_to_target_s"] if s["time_to_target_s"] is not None else "not reached",
                         s["time_to_target_training_s"]])  # fmt: skip
        rows.append(
            [f"{label}: median (min-max)", "", "", "", "", "", _shown(total), _shown(training)]
        )
    lmrl_summary, trl_summary = summary["lmrl PPO (recipe) + LoRA"], summary["TRL GRPO + LoRA"]
    lmrl_median = lmrl_summary["time_to_target_s"]["median"]
    trl_median = trl_summary["time_to_target_s"]["median"]
    mismatches = sum(s["completion_text_mismatches"] for s in theirs)
    common.report(
        name,
        args,
        title=f"Time to reward on {settings['env_id']} {settings['env_kwargs']} ({settings['model']} + LoRA, "
        f"lmrl's recipe {RECIPE.name}; {args.runs} run(s) per side in turns, {budget:g} s of training each; "
        f"target = the median of TRL's plateaus, {target})",
        columns=[
            "side",
            "seed",
            "set-up s",
            "updates",
            "first reward",
            "plateau reward",
            "s to target",
            "s to target (training)",
        ],
        rows=rows,
        lmrl=lmrl_summary,
        baseline=trl_summary,
        ratio_value=common.ratio(trl_median, lmrl_median) if lmrl_median else None,
        ratio_meaning="median TRL seconds to the target reward / median lmrl seconds (set-up included; "
        "> 1: lmrl is faster)",
        target={
            "min": 1.0,
            "description": "lmrl reaches TRL's reward in less wall-clock time than TRL",
        },
        extra={
            "recipe": str(RECIPE.relative_to(common.ROOT)),
            "settings": settings,
            "prompt_format": recipe_prompt_format(cfg),
            "budget_s": budget,
            "runs": args.runs,
            "target_reward": target,
            "trl_plateaus": [plateau(s) for s in theirs],
            "completion_text_mismatches": mismatches,
            "ray": "shut down before lmrl run 1, which starts it (in its set-up); later lmrl runs "
            "connect to it; TRL runs after the first share the machine with it (idle)",
            "load_average": loads,
            "trl_version": __import__("trl").__version__,
            "peft_version": __import__("peft").__version__,
        },  # fmt: skip
        started=started,
    )
    return 0


def _main_tiny(args: Any, started: float) -> int:
    budget = args.budget
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
            "ratio_running_ray": common.ratio(trl_total, warm_total)
            if warm_total and trl_total
            else None,
        },  # fmt: skip
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
