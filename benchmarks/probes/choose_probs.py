"""SmolLM2 zero-shot choice probabilities with summed and with mean candidate scores.

Usage: python benchmarks/probes/choose_probs.py ENV_ID   (4 states: resets with seeds 1000-1003;
    one line per state and score; docs/results.md records it)
"""

from __future__ import annotations

import sys

import torch

import lmrl.envs as E
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.evaluate import zero_shot_policy


def main() -> None:
    torch.set_num_threads(1)
    env_id = sys.argv[1]
    observations = [E.make(env_id).reset(seed=1000 + s)[0] for s in range(4)]
    for scoring in ("sum", "mean"):
        policy = {"model": "smollm2-135m-instruct", "action_mode": "choose", "choice_scoring": scoring}
        cfg = RunConfig.model_validate({"env": {"id": env_id}, "policy": policy})
        probs = zero_shot_policy(cfg).choice_probs(observations)
        for o, p in zip(observations, probs, strict=True):
            shown = [f"{a}: {q:.2f}" for a, q in zip(o["actions"], p, strict=False)]
            print(scoring, o["text"][:100].replace("\n", " "), shown)


if __name__ == "__main__":
    main()
