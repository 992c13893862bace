"""``quickstart``: the main job -- train, evaluate and export a Maze policy on this machine.

Starts a local Ray, trains the default tiny LLM policy on ``lmrl/Maze-v0`` in
choose mode with PPO, evaluates it greedily on 100 seeded episodes beside the
random and expert baselines, exports it, and writes ``results.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lmrl.pipelines.config import RunConfig

#: The quickstart run; also shipped as ``examples/maze_choose.yaml``.
QUICKSTART_CONFIG: dict[str, Any] = {
    "env": {"id": "lmrl/Maze-v0"},
    "policy": {"model": "tiny", "action_mode": "choose"},
    "algorithm": {"lr": 1e-3, "train_batch_size": 512, "minibatch_size": 128, "num_epochs": 4},
    "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 16},
    "run": {
        "seed": 0,
        "stop": {"iterations": 60, "time_s": 420},
        "checkpoint_every": 10,
        "eval_episodes": 0,
    },
}

EVAL_EPISODES = 100


def quickstart_config(out: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """:data:`QUICKSTART_CONFIG` with ``overrides`` merged in, writing under ``out``."""
    raw = _merge(json.loads(json.dumps(QUICKSTART_CONFIG)), overrides or {})
    raw["run"]["output_dir"] = str(out or "runs/quickstart")
    raw["run"].setdefault("name", f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    return RunConfig.model_validate(raw)


def quickstart(out: str | None = None, cfg: RunConfig | None = None) -> dict[str, Any]:
    """Runs the quickstart and returns its results (also in ``OUT/results.json``).

    Args:
        out: Output directory (default ``runs/quickstart``).
        cfg: The run config (default :func:`quickstart_config`); ``lmrl
            quickstart --set key=value`` passes an adjusted one.

    Returns:
        ``success_rate`` (greedy, 100 episodes), ``sampled_success_rate``,
        ``random_success_rate``, ``expert_success_rate``, mean returns,
        ``wall_seconds``, ``run_dir`` and ``export_dir``.
    """
    from lmrl.pipelines.evaluate import evaluate
    from lmrl.pipelines.rl import train

    started = time.perf_counter()
    out_dir = Path(out or "runs/quickstart")
    cfg = cfg or quickstart_config(str(out_dir))
    run_dir = train(cfg)
    report = evaluate(str(run_dir), n=EVAL_EPISODES, seed=10_000, out_dir=str(run_dir / "eval"))
    results = {
        "env_id": cfg.env.id,
        "action_mode": cfg.policy.action_mode,
        "success_rate": report["greedy_success_rate"],
        "mean_return": report["greedy_mean_return"],
        "sampled_success_rate": report["sampled_success_rate"],
        "random_success_rate": report["random_success_rate"],
        "random_mean_return": report["random_mean_return"],
        "expert_success_rate": report["expert_success_rate"],
        "expert_mean_return": report["expert_mean_return"],
        "eval_episodes": EVAL_EPISODES,
        "train": json.loads((run_dir / "summary.json").read_text()),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "run_dir": str(run_dir),
        "export_dir": str(run_dir / "export"),
        "transcripts": report["transcripts_path"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base
