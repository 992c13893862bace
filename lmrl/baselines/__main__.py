"""``python -m lmrl.baselines ENV_ID``: train a tabular baseline and evaluate it greedily.

Prints one JSON line; the figures in docs/envs.md come from this command.
"""

from __future__ import annotations

import argparse
import json
import time

from lmrl.baselines.tabular import ALGOS, train_tabular
from lmrl.envs.rollout import run_episodes


def main(argv: list[str] | None = None) -> int:
    """``python -m lmrl.baselines ENV_ID [--algo q|sarsa] [--episodes N] [--seed S] [-n N]``.

    Trains, then prints the greedy agent's success rate and mean return over
    ``n`` evaluation episodes on seeds ``10_000 +`` (apart from the training seeds).
    """
    parser = argparse.ArgumentParser(prog="python -m lmrl.baselines", description=main.__doc__)
    parser.add_argument("env_id")
    parser.add_argument("--algo", choices=ALGOS, default="q")
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-n", type=int, default=200, help="evaluation episodes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    agent, curve = train_tabular(args.env_id, args.algo, args.episodes, args.seed)
    seconds = time.perf_counter() - start
    report = run_episodes(args.env_id, agent.greedy(args.seed), n=args.n, seed=10_000)
    print(json.dumps({
        "env_id": args.env_id, "algo": args.algo, "episodes": args.episodes, "train_s": round(seconds, 1),
        "states": agent.n_states, "train_success_last_200": round(curve.success_rate(200), 3),
        "eval_success_rate": round(report.success_rate, 3), "eval_mean_return": round(report.mean_return, 3),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
