"""Screens two-player envs: SmolLM2-135M-Instruct zero-shot (greedy) in one seat against random.

Usage: python benchmarks/probes/versus_random_screen.py ENV_IDS N [SEED] [POLICY]
    ENV_IDS comma-separated multi-agent catalog ids; for each env and each seat, N games
    from SEED (default 1000; `lmrl eval` rows use 1000000) with the policy greedy in that
    seat and the random agent in the others, and N games of random against random on the
    same seeds. POLICY: default the zero-shot model (prompted as `lmrl eval
    smollm2-135m-instruct --env ID` prompts it); or a trained policy (an export directory,
    e.g. runs/NAME/export/shared). Prints one JSON line per (env, seat); docs/results.md
    records the output.
"""

from __future__ import annotations

import json
import sys
import time

import lmrl.envs
from lmrl.envs.multiagent import RandomMultiAgent
from lmrl.envs.rollout import run_episodes
from lmrl.pipelines.evaluate import against_random, zero_shot_config, zero_shot_policy
from lmrl.policies.text_policy import TextPolicy


def main() -> None:
    envs, n = sys.argv[1].split(","), int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    trained = sys.argv[4] if len(sys.argv) > 4 else None
    for env_id in envs:
        agents = sorted(lmrl.envs.make(env_id).possible_agents)
        text_policy = (
            TextPolicy.from_pretrained(trained)
            if trained
            else zero_shot_policy(zero_shot_config("smollm2-135m-instruct", env_id))
        )
        random_ = run_episodes(env_id, {a: RandomMultiAgent(seed + i) for i, a in enumerate(agents)}, n, seed)
        for seat in agents:
            start = time.perf_counter()
            report = against_random(env_id, agents, seat, text_policy, n, seed)  # as `lmrl eval` plays it
            row = {
                "env": env_id,
                "policy": trained or "smollm2-135m-instruct (zero-shot)",
                "seed": seed,
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
