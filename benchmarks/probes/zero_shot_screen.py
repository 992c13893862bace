"""Screens envs for SmolLM2-135M-Instruct zero-shot (greedy, choose mode) against the random agent.

Usage: python benchmarks/probes/zero_shot_screen.py ENV_IDS N [MULTI_TURN ...] [--kwargs JSON]
    ENV_IDS comma-separated; N episodes from seed 1000 (not the held-out seeds
    1,000,000+ that `lmrl eval` rows use); MULTI_TURN values `on`/`off` (default: on);
    ``--kwargs`` env arguments for every env listed (e.g. TextWorld-Express game parameters).

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
    argv = sys.argv[1:]
    kwargs: dict = {}
    if "--kwargs" in argv:
        i = argv.index("--kwargs")
        kwargs = json.loads(argv[i + 1])
        del argv[i : i + 2]
    envs, n = argv[0].split(","), int(argv[1])
    modes = [m == "on" for m in (argv[2:] or ["on"])]
    for env_id in envs:
        random_ = run_episodes(env_id, RandomAgent(1000), n, 1000, env_kwargs=kwargs)
        for multi_turn in modes:
            cfg = RunConfig.model_validate(
                {
                    "env": {"id": env_id, "kwargs": kwargs},
                    "policy": {
                        "model": "smollm2-135m-instruct",
                        "action_mode": "choose",
                        "multi_turn": multi_turn,
                    },
                }
            )
            start = time.perf_counter()
            policy = zero_shot_policy(cfg)
            report = run_policy_episodes(
                policy, env_id, n, seed=1000, greedy=True, env_kwargs=kwargs
            )
            row = {
                "env": env_id,
                "kwargs": kwargs,
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
