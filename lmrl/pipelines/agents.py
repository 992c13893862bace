"""Agents named on the command line: ``random``, ``expert`` or a trained policy's directory.

Light to import (no torch until a policy directory is loaded), so that
``lmrl envs rollout --policy random`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmrl.errors import RunError

__all__ = ["make_agent", "require_policy_dir"]


def require_policy_dir(kind: str, role: str = "policy") -> None:
    """Raises the CLI's error for an agent spec that is neither ``random``, ``expert`` nor a path."""
    if not Path(kind).exists():
        raise RunError(
            f"--{role} must be random, expert or a run / exported model directory, got {kind!r}, which does not exist"
        )


def make_agent(kind: str, seed: int = 0, greedy: bool = True, *, multiagent: bool = False, role: str = "policy") -> Any:
    """``random``, ``expert`` or a run / exported policy directory -> an agent.

    Args:
        kind: ``random``, ``expert`` or a path.
        seed: The random agent's seed, or the policy's sampling seed.
        greedy: A trained policy acts greedily (else samples).
        multiagent: Return the multi-agent API (``act(agent, obs, info, env)``) instead of
            the single-agent one (``act(obs, info, env)``).
        role: The command-line option ``kind`` came from, for the error.

    Raises:
        RunError: ``kind`` is none of those.
    """
    if kind in ("random", "expert"):
        if multiagent:
            from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent

            return RandomMultiAgent(seed) if kind == "random" else ExpertMultiAgent()
        from lmrl.envs.agents import ExpertAgent, RandomAgent

        return RandomAgent(seed) if kind == "random" else ExpertAgent()
    require_policy_dir(kind, role)
    from lmrl.pipelines.evaluate import PolicyMultiAgent, load_policy, load_policy_agent

    if multiagent:
        return PolicyMultiAgent(load_policy(kind), greedy=greedy, seed=seed)
    return load_policy_agent(kind, greedy=greedy, seed=seed)
