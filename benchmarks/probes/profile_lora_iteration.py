"""Where one SmolLM2-135M-Instruct + LoRA PPO iteration spends its time (cProfile, in one process).

Usage: python benchmarks/probes/profile_lora_iteration.py ENV_ID STEPS [THREADS] [MINIBATCH]
    One warm-up iteration, then one profiled ``algo.train()`` of STEPS env steps
    (``num_env_runners: 0``, so sampling runs in this process and the profile
    sees it). Prints one JSON line: wall seconds, then the cumulative seconds of
    each stage (sampling forward passes, env steps with tokenisation, learner
    forward, backward, optimizer, weight sync, connectors) and lmrl's own share.
    BENCHMARKS.md ("Real model") records the output. A guard thread stops the
    process (exit 3) if its RSS passes 18 GiB: at minibatch 16 the learner's
    backward through 8 candidates x 30 layers took this 24 GiB machine into swap.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import tempfile
import threading
import time

import torch

#: Stage -> (file suffix, function name) whose cumulative time the stage is.
STAGES: dict[str, tuple[str, str]] = {
    "sample: policy forward (runner)": ("lmrl/policies/module.py", "_act"),
    "sample: env step + tokenisation": ("lmrl/envs/adapter.py", "step"),
    "sample: tokenisation only": ("lmrl/envs/adapter.py", "encode_observation"),
    "sample: whole env runner": ("single_agent_env_runner.py", "sample"),
    "learn: forward_train": ("lmrl/policies/module.py", "_forward_train"),
    "learn: value pass (compute_values)": ("lmrl/policies/module.py", "compute_values"),
    "learn: loss": ("lmrl/pipelines/rl/learner.py", "compute_loss_for_module"),
    "learn: backward": ("torch/_tensor.py", "backward"),
    "learn: optimizer step": ("torch/optim/optimizer.py", "wrapper"),
    "learn: learner connectors": ("learner_connector_pipeline.py", "__call__"),
    "learn: whole update": ("learner_group.py", "update"),
    "sync: get_state (learner)": ("lmrl/policies/module.py", "get_state"),
    "sync: set_state (runner)": ("lmrl/policies/module.py", "set_state"),
}


MAX_RSS = 18 * 2**30
PEAK = [0]


def _guard() -> None:
    import psutil

    me = psutil.Process()
    while True:
        rss = me.memory_info().rss
        PEAK[0] = max(PEAK[0], rss)
        if rss > MAX_RSS:
            print(json.dumps({"error": f"RSS {rss / 2**30:.1f} GiB over the guard"}), flush=True)
            os._exit(3)
        time.sleep(0.2)


def main() -> None:
    from lmrl.pipelines.config import RunConfig
    from lmrl.pipelines.policy_setup import resolve_auto
    from lmrl.pipelines.rl.builder import build_algorithm_config
    from lmrl.policies import models

    env_id, steps = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    minibatch = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    threading.Thread(target=_guard, daemon=True).start()
    model_dir = str(models.pull("smollm2-135m-instruct"))
    out = tempfile.mkdtemp()
    cfg = resolve_auto(
        RunConfig.model_validate(
            {
                "env": {"id": env_id},
                "policy": {"model": "smollm2-135m-instruct", "action_mode": "choose"},
                "algorithm": {"train_batch_size": steps, "minibatch_size": minibatch, "num_epochs": 1},
                "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 8},
                "run": {"output_dir": out, "name": "profile", "progress": False},
            }
        )
    )
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    algo = build_algorithm_config(cfg, model_dir).build_algo()
    algo.train()  # warm-up: first-call costs out of the profile
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    result = algo.train()
    prof.disable()
    wall = time.perf_counter() - start
    algo.stop()
    ray.shutdown()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    row: dict[str, object] = {
        "env": env_id,
        "env_steps": int(result["env_runners"]["num_env_steps_sampled"]),
        "threads": torch.get_num_threads(),
        "minibatch": minibatch,
        "wall_s": round(wall, 2),
    }
    for stage, (suffix, name) in STAGES.items():
        row[stage] = round(
            sum(v[3] for (f, _, n), v in stats.items() if f.endswith(suffix) and n == name and v[3] < 10 * wall),
            2,
        )
    # lmrl's own Python (not torch kernels it calls): self time of functions in lmrl/.
    row["lmrl self time"] = round(sum(v[2] for (f, _, _), v in stats.items() if "/lmrl/" in f), 2)
    row["torch ops self time"] = round(
        sum(v[2] for (f, _, n), v in stats.items() if f == "~" and ("torch" in n or "method" in n)), 2
    )
    row["peak_rss_gib"] = round(PEAK[0] / 2**30, 2)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
