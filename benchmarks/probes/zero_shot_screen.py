"""Screens envs for SmolLM2-135M-Instruct zero-shot (greedy, choose mode) against the random agent.

Usage: python benchmarks/probes/zero_shot_screen.py ENV_IDS N [MULTI_TURN ...]
    ENV_IDS comma-separated; N episodes from seed 1000 (not the held-out seeds
    1,000,000+ that `lmrl eval` rows use); MULTI_TURN values `on`/`off` (default: on).

The policy is what `lmrl eval smollm2-135m-instruct --env ID --set policy.action_mode=choose`
builds (chat prompt from the env's docs, actions listed, summed scores), with
`policy.multi_turn` set as asked. Prints one JSON line per (env, multi_turn);
docs/results.md records the output.
"""

from __future__ import annotations

import json
import sys
import time

from lmrl.envs.agents import RandomAgent
from lmrl.envs.rollout import run_episodes
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.evaluate import run_policy_episodes, zero_shot_policy


def main() -> None:
    envs, n = sys.argv[1].split(","), int(sys.argv[2])
    modes = [m == "on" for m in (sys.argv[3:] or ["on"])]
    for env_id in envs:
        random_ = run_episodes(env_id, RandomAgent(1000), n, 1000)
        for multi_turn in modes:
            cfg = RunConfig.model_validate(
                {
                    "env": {"id": env_id},
                    "policy": {"model": "smollm2-135m-instruct", "action_mode": "choose", "multi_turn": multi_turn},
                }
            )
            start = time.perf_counter()
            report = run_policy_episodes(zero_shot_policy(cfg), env_id, n, seed=1000, greedy=True)
            row = {
                "env": env_id,
                "multi_turn": multi_turn,
                "episodes": n,
                "greedy_success": report.success_rate,
                "greedy_return": round(report.mean_return, 3),
                "mean_length": report.mean_length,
                "random_success": random_.success_rate,
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
