"""Scripted agents for debugging and baselines: uniformly random, and the env's expert.

Both follow one small protocol, ``act(obs, info, env) -> str``, where ``env``
may be wrapped (they use ``env.unwrapped``).

Example:
    >>> import lmrl
    >>> from lmrl.envs import RandomAgent, make
    >>> env = make("lmrl/Maze-v0")
    >>> obs, info = env.reset(seed=0)
    >>> action = RandomAgent(seed=0).act(obs, info, env)
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

_AGENT_STREAM = 0x1A6E27  # spawn key: keeps agent draws apart from an env seeded alike


class Agent(Protocol):
    """Anything that picks an action text from an observation."""

    def act(self, obs: dict[str, Any], info: dict[str, Any], env: gym.Env) -> str:
        """Returns the action text for ``obs``."""
        ...


class RandomAgent:
    """Picks uniformly among the admissible actions, or asks the env for a random one.

    When the observation lists no admissible actions (free-text envs), the
    env's ``random_action(rng)`` hook draws one from this agent's generator,
    so the env's own randomness is never disturbed.

    The generator is spawned from ``seed`` on its own stream, so an agent and an
    env reset with the same number do not draw the same values (a
    ``default_rng(s)`` agent would guess GuessNumber's secret at once after
    ``reset(seed=s)``).

    Args:
        seed: Seed of the agent's ``np.random.Generator``; ``None`` for fresh entropy.
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_AGENT_STREAM,)))

    def act(self, obs: dict[str, Any], info: dict[str, Any], env: gym.Env) -> str:
        """Returns a random admissible action (or the env's random free-text action)."""
        actions = obs.get("actions") if isinstance(obs, dict) else None
        if actions:
            return str(actions[int(self.rng.integers(len(actions)))])
        return env.unwrapped.random_action(self.rng)

    def __repr__(self) -> str:
        return f"RandomAgent(seed={self.seed!r})"


class ExpertAgent:
    """Plays the env's scripted expert (``env.unwrapped.expert_action()``; privileged state)."""

    def act(self, obs: dict[str, Any], info: dict[str, Any], env: gym.Env) -> str:
        """Returns the expert's action in the env's current state."""
        return env.unwrapped.expert_action()

    def __repr__(self) -> str:
        return "ExpertAgent()"
