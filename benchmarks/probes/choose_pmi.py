"""Greedy choice against the expert: summed scores, and PMI-calibrated ones.

PMI: each candidate's summed score minus its score under a content-free
observation ("N/A"), as in "calibrate before use". Over N states of a seeded
random walk (resets from seed 2000), SmolLM2 zero-shot, choose mode.

Usage: python benchmarks/probes/choose_pmi.py ENV_ID N   (one JSON line; docs/results.md records it)
"""

from __future__ import annotations

import json
import sys

import torch

import lmrl.envs as E
from lmrl.envs.agents import RandomAgent
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.evaluate import zero_shot_policy


def main() -> None:
    torch.set_num_threads(1)
    env_id, n = sys.argv[1], int(sys.argv[2])
    cfg = RunConfig.model_validate(
        {"env": {"id": env_id}, "policy": {"model": "smollm2-135m-instruct", "action_mode": "choose"}}
    )
    policy = zero_shot_policy(cfg)
    env, walker = E.make(env_id), RandomAgent(0)
    obs, info = env.reset(seed=2000)
    states, episode = [], 0
    while len(states) < n:
        states.append((obs, env.unwrapped.expert_action()))
        obs, _, terminated, truncated, info = env.step(walker.act(obs, info, env))
        if terminated or truncated:
            episode += 1
            obs, info = env.reset(seed=2000 + episode)
    with torch.no_grad():
        scores = policy.choice_logits(policy.encode([o for o, _ in states]))
        blank = policy.choice_logits(policy.encode([{**o, "text": "N/A"} for o, _ in states]))
    agree = {"sum": 0, "pmi": 0}
    for k, (o, expert) in enumerate(states):
        m = len(o["actions"])
        agree["sum"] += o["actions"][int(scores[k, :m].argmax())] == expert
        agree["pmi"] += o["actions"][int((scores[k, :m] - blank[k, :m]).argmax())] == expert
    uniform = sum(1 / len(o["actions"]) for o, _ in states) / n
    print(json.dumps({"env": env_id, "states": n, "greedy_is_expert": {k: v / n for k, v in agree.items()}, "uniform": uniform}))


if __name__ == "__main__":
    main()
