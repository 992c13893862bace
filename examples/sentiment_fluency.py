"""Greedy continuations of every SentimentSteer prompt: sentiment against degeneracy.

VADER rewards positive words, not fluent text, so PPO on it alone learns to
repeat one word ("best best best ..."). This script plays each of the env's
prompts once, greedily, and reports for each policy the mean sentiment, the
share of continuations that repeat a word three or more times, and the mean
share of distinct words. It compares an SFT model, PPO without the KL
penalty, and PPO with it (``algorithm.kl_ref_coeff``).

    python examples/sentiment_fluency.py runs/qs-sentiment/sft-*/model runs/qs-sentiment/train-*/export
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from typing import Any

ENV_ID = "lmrl/SentimentSteer-v0"


def fluency(policy_dir: str, max_seeds: int = 5000) -> dict[str, Any]:
    """Plays every prompt of the env once with the policy (greedy) and scores the continuations."""
    import lmrl.envs
    from lmrl.policies.text_policy import PolicyAgent, TextPolicy

    env = lmrl.envs.make(ENV_ID)
    agent = PolicyAgent(TextPolicy.from_pretrained(policy_dir), greedy=True)
    n_prompts = len(env.unwrapped.prompts)
    rows, seen = [], set()
    for seed in range(max_seeds):  # seeds draw prompts; keep the first episode of each
        obs, info = env.reset(seed=seed)
        if env.unwrapped.index in seen:
            continue
        seen.add(env.unwrapped.index)
        action = agent.act(obs, info, env)
        _, reward, *_ = env.step(action)
        counts = collections.Counter(action.split())
        words = sum(counts.values())
        rows.append((reward, bool(counts) and max(counts.values()) >= 3, len(counts) / max(1, words), action))
        if len(seen) == n_prompts:
            break
    n = len(rows)
    return {
        "policy": policy_dir,
        "prompts": n,
        "mean_sentiment": round(sum(r[0] for r in rows) / n, 3),
        "share_repeating_a_word_3x": round(sum(r[1] for r in rows) / n, 3),
        "distinct_word_ratio": round(sum(r[2] for r in rows) / n, 3),
        "examples": [r[3] for r in rows[:4]],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policies", nargs="+", help="exported policy or HF model directories")
    args = p.parse_args(argv)
    for path in args.policies:
        print(json.dumps(fluency(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
