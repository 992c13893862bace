"""Screens two-player envs: SmolLM2-135M-Instruct zero-shot (greedy) in one seat against random.

Usage: python benchmarks/probes/versus_random_screen.py ENV_IDS N
    ENV_IDS comma-separated multi-agent catalog ids; for each env and each seat, N games
    from seed 1000 with the model (prompted as `lmrl eval smollm2-135m-instruct --env ID`
    prompts it) in that seat and the random agent in the others, and N games of random
    against random on the same seeds. Prints one JSON line per (env, seat); docs/results.md
    records the output.
"""

from __future__ import annotations

import json
import sys
import time

import lmrl.envs
from lmrl.envs.multiagent import RandomMultiAgent
from lmrl.envs.rollout import run_episodes
from lmrl.pipelines.evaluate import PolicyMultiAgent, zero_shot_config, zero_shot_policy


def main() -> None:
    envs, n = sys.argv[1].split(","), int(sys.argv[2])
    for env_id in envs:
        agents = sorted(lmrl.envs.make(env_id).possible_agents)
        policy = PolicyMultiAgent(zero_shot_policy(zero_shot_config("smollm2-135m-instruct", env_id)))
        random_ = run_episodes(env_id, {a: RandomMultiAgent(1000 + i) for i, a in enumerate(agents)}, n, 1000)
        for seat in agents:
            players = {a: RandomMultiAgent(1000 + i) for i, a in enumerate(agents)}
            players[seat] = policy
            start = time.perf_counter()
            report = run_episodes(env_id, players, n, 1000)
            row = {
                "env": env_id,
                "seat": seat,
                "episodes": n,
                "model_success": report.success_rate(seat),
                "model_return": round(report.mean_return(seat), 3),
                "random_success": random_.success_rate(seat),
                "random_return": round(random_.mean_return(seat), 3),
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
