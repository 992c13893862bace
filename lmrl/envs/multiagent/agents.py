"""Scripted agents for multi-agent envs, and the texts of their play.

A multi-agent agent has ``act(agent, obs, info, env) -> str``: the agent id comes
first, because one scripted agent may play several seats. ``lmrl.envs.run_episodes``
plays them.

Example:
    >>> from lmrl.envs import run_episodes
    >>> from lmrl.envs.multiagent import RandomMultiAgent
    >>> report = run_episodes("lmrl/Referential-v0", RandomMultiAgent(0), n=10)
    >>> sorted(report.returns)
    ['listener_0', 'speaker_0']
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

_AGENT_STREAM = 0x3A6E27  # spawn key: keeps agent draws apart from an env seeded alike


class MultiAgentAgent(Protocol):
    """Anything that picks ``agent``'s action text."""

    def act(self, agent: str, obs: dict[str, Any], info: dict[str, Any], env: Any) -> str:
        """Returns the action text of ``agent``."""
        ...


class RandomMultiAgent:
    """Uniform over the agent's admissible actions (else the env's ``random_action(agent, rng)``).

    Args:
        seed: Seed of the agent's generator (on its own stream, apart from the env's).
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_AGENT_STREAM,)))

    def act(self, agent: str, obs: dict[str, Any], info: dict[str, Any], env: Any) -> str:
        """A random admissible action for ``agent``."""
        actions = obs.get("actions") if isinstance(obs, dict) else None
        if actions:
            return str(actions[int(self.rng.integers(len(actions)))])
        return env.unwrapped.random_action(agent, self.rng)

    def __repr__(self) -> str:
        return f"RandomMultiAgent(seed={self.seed!r})"


class ExpertMultiAgent:
    """Plays the env's scripted expert for the agent (``env.unwrapped.expert_action(agent)``)."""

    def act(self, agent: str, obs: dict[str, Any], info: dict[str, Any], env: Any) -> str:
        """The expert's action for ``agent``."""
        return env.unwrapped.expert_action(agent)

    def __repr__(self) -> str:
        return "ExpertMultiAgent()"


def multiagent_corpus(env_id: str, episodes: int = 30, seed: int = 0) -> list[str]:
    """Observation and action texts of expert and random play, e.g. to train a tokenizer.

    The multi-agent counterpart of ``lmrl.pipelines.corpus.env_corpus``: for each of
    ``episodes`` seeds, one all-expert and one all-random episode, with every
    observation text, admissible action and chosen action, in a deterministic order.
    """
    from lmrl.envs.multiagent import make_aec

    env = make_aec(env_id)
    texts: list[str] = []
    for agent in (ExpertMultiAgent(), RandomMultiAgent(seed)):
        for i in range(episodes):
            env.reset(seed=seed + i)
            for name in env.agent_iter():
                obs, _, terminated, truncated, info = env.last()
                texts.append(obs["text"])
                texts.extend(obs["actions"])
                if terminated or truncated:
                    env.step(None)
                    continue
                action = agent.act(name, obs, info, env)
                texts.append(action)
                env.step(action)
    env.close()
    return texts
