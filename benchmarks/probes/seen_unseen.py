"""Splits a held-out evaluation by whether each episode's first observation was in the training data.

Usage: python benchmarks/probes/seen_unseen.py POLICY ENV_ID N SEED TRAIN.parquet [TRAIN.parquet ...]
    POLICY a run, export or SFT model directory (as `lmrl eval POLICY --env ENV_ID` takes it);
    N greedy episodes from SEED (the rows of docs/results.md use 1000000); TRAIN.parquet the
    files the policy was trained on (`lmrl data collect` output: their `observation` column at
    turn 0). Single-agent envs with small problem spaces (reasoning-gym's basic_arithmetic,
    lmrl/Arithmetic) draw held-out problems that also occur in training under other seeds;
    this says how much of the greedy success is on problems the policy never saw.
    Prints one JSON line; docs/results.md records it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from lmrl.pipelines.evaluate import evaluate


def main() -> None:
    policy, env_id, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    seen: set[str] = set()
    for path in sys.argv[5:]:
        table = pq.read_table(path, columns=["observation", "turn"]).to_pylist()
        seen |= {row["observation"].strip() for row in table if row["turn"] == 0}
    with tempfile.TemporaryDirectory() as out:
        evaluate(policy, env_id, n, seed=seed, out_dir=out, transcripts=n, sampled=False)
        episodes = [json.loads(line) for line in (Path(out) / "transcripts.jsonl").read_text().splitlines()]
    split = {True: [0, 0], False: [0, 0]}  # in training -> [episodes, successes]
    for episode in episodes:
        known = episode["steps"][0]["observation"].strip() in seen
        split[known][0] += 1
        split[known][1] += int(bool(episode["success"]))
    row = {
        "policy": policy,
        "env": env_id,
        "seed": seed,
        "episodes": len(episodes),
        "greedy_success": sum(s for _, s in split.values()) / max(1, len(episodes)),
        "seen_episodes": split[True][0],
        "seen_success": split[True][1] / max(1, split[True][0]),
        "unseen_episodes": split[False][0],
        "unseen_success": split[False][1] / max(1, split[False][0]),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
