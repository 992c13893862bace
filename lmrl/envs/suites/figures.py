"""Random and expert success rates of the suite adapters, as the markdown tables in docs/envs.md.

Usage::

    python -m lmrl.envs.suites.figures twx babyai textarena rg --episodes 200

Episode ``i`` of every id is reset with seed ``i`` (for the suites, the
suite's own seed: TextWorld-Express game ``i``, minigrid seed ``i``,
reasoning-gym problem ``i``). Single-agent ids (TextArena's one-player games
too) run :class:`~lmrl.envs.RandomAgent` (seed 0) and :class:`~lmrl.envs.ExpertAgent`;
TextArena's two-player games run the expert in each seat against the random
agent, random against random, and expert against expert.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import lmrl
from lmrl.envs import ExpertAgent, RandomAgent, run_episodes

#: Suite name -> id prefix, and extra constructor kwargs rows (label, kwargs).
PREFIXES: dict[str, str] = {
    "twx": "twx/",
    "babyai": "babyai/",
    "textarena": "textarena/",
    "rg": "rg/",
}
EXTRA_ROWS: dict[str, list[tuple[str, str, dict]]] = {
    "twx": [
        (
            "twx/Coin-v0",
            "numLocations=3,includeDoors=0",
            {"game_params": "numLocations=3,includeDoors=0"},
        ),
        (
            "twx/CookingWorld-v0",
            "numLocations=3,includeDoors=0",
            {"game_params": "numLocations=3,includeDoors=0"},
        ),
    ]
}


def single_agent_rows(suite: str, episodes: int, only: Sequence[str] = ()) -> list[str]:
    """Markdown rows ``| id | args | random | expert | expert steps | seconds |`` for a suite.

    Args:
        suite: A key of :data:`PREFIXES`.
        episodes: Episodes per agent and id (seeds ``0 .. episodes - 1``).
        only: If given, just these ids.
    """
    ids = [e for e in lmrl.envs.list_envs() if e.startswith(PREFIXES[suite])]
    ids = [e for e in ids if e in only] if only else ids
    extra = [r for r in EXTRA_ROWS.get(suite, []) if not only or r[0] in only]
    runs = [(e, "defaults", {}) for e in ids] + extra
    rows = []
    for env_id, label, kwargs in runs:
        start = time.perf_counter()
        rand = run_episodes(env_id, RandomAgent(0), n=episodes, env_kwargs=kwargs)
        expert = run_episodes(env_id, ExpertAgent(), n=episodes, env_kwargs=kwargs)
        seconds = time.perf_counter() - start
        rows.append(
            f"| `{env_id}` | {label} | {rand.success_rate:.1%} | {expert.success_rate:.1%} "
            f"| {expert.mean_length:.1f} | {seconds:.0f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def multi_agent_rows(episodes: int, only: Sequence[str] = ()) -> list[str]:
    """Markdown rows ``| id | seats | player_0 success | player_1 success |`` for TextArena.

    Args:
        episodes: Episodes per seating and id (seeds ``0 .. episodes - 1``).
        only: If given, just these ids.
    """
    from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent

    rows = []
    multi_agent_ids = lmrl.envs.list_envs(kinds=("aec", "parallel"))
    ids = [e for e in multi_agent_ids if e.startswith("textarena/")]
    for env_id in [e for e in ids if e in only] if only else ids:
        seatings = {
            "random vs random": {"player_0": RandomMultiAgent(0), "player_1": RandomMultiAgent(1)},
            "expert vs random": {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(1)},
            "random vs expert": {"player_0": RandomMultiAgent(0), "player_1": ExpertMultiAgent()},
            "expert vs expert": {"player_0": ExpertMultiAgent(), "player_1": ExpertMultiAgent()},
        }
        for label, agents in seatings.items():
            report = run_episodes(env_id, agents, n=episodes)
            rows.append(
                f"| `{env_id}` | {label} | {report.success_rate('player_0'):.1%} "
                f"| {report.success_rate('player_1'):.1%} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Prints one markdown table per suite named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suites", nargs="+", choices=sorted(PREFIXES))
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=(), metavar="ID", help="just these ids")
    args = parser.parse_args(argv)
    for suite in args.suites:
        if suite == "textarena":  # two-player games; the one-player ones follow
            print("| id | seats (player_0 vs player_1) | player_0 success | player_1 success |")
            print("|---|---|---|---|")
            print("\n".join(multi_agent_rows(args.episodes, args.only)))
            print()
        rows = single_agent_rows(suite, args.episodes, args.only)
        if rows or suite != "textarena":
            print("| id | arguments | random | expert | expert mean steps | seconds |")
            print("|---|---|---|---|---|---|")
            print("\n".join(rows))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
