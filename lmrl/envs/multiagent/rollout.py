"""Scripted agents for multi-agent envs and a rollout loop that reports per-agent results.

A multi-agent agent has ``act(agent, obs, info, env) -> str``: the agent id comes
first, because one scripted agent may play several seats.

Example:
    >>> from lmrl.envs.multiagent import RandomMultiAgent, run_multiagent_episodes
    >>> report = run_multiagent_episodes("lmrl/Referential-v0", RandomMultiAgent(0), n=10)
    >>> sorted(report.returns)
    ['listener_0', 'speaker_0']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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


@dataclass
class MultiAgentReport:
    """Per-episode, per-agent results of :func:`run_multiagent_episodes`.

    Attributes:
        env_id: The env that was run.
        seed: Seed of episode 0 (episode ``i`` used ``seed + i``).
        returns: Per agent, the undiscounted return of each episode.
        successes: Per agent, ``info["success"]`` at the end of each episode.
        final_infos: Per agent, the last info of each episode (e.g. ``"outcome"``).
        lengths: Agent moves per episode (all agents together).
        transcripts: For the first ``keep_transcripts`` episodes: (agent, observation text, action).
    """

    env_id: str
    seed: int
    returns: dict[str, list[float]] = field(default_factory=dict)
    successes: dict[str, list[bool]] = field(default_factory=dict)
    final_infos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)
    transcripts: list[list[tuple[str, str, str]]] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of episodes."""
        return len(self.lengths)

    def success_rate(self, agent: str) -> float:
        """Fraction of episodes in which ``agent`` succeeded (0.0 with no episodes)."""
        s = self.successes.get(agent, [])
        return sum(s) / len(s) if s else 0.0

    def mean_return(self, agent: str) -> float:
        """``agent``'s mean return (NaN with no episodes)."""
        r = self.returns.get(agent, [])
        return sum(r) / len(r) if r else math.nan

    def outcome_rate(self, agent: str, outcome: str) -> float:
        """Fraction of episodes whose final ``info["outcome"]`` for ``agent`` was ``outcome``."""
        infos = self.final_infos.get(agent, [])
        return sum(i.get("outcome") == outcome for i in infos) / len(infos) if infos else 0.0

    def summary(self) -> dict[str, Any]:
        """The aggregate figures as a JSON-ready dict."""
        return {
            "env_id": self.env_id,
            "episodes": self.n,
            "seed": self.seed,
            "mean_length": sum(self.lengths) / self.n if self.n else math.nan,
            "agents": {
                a: {"success_rate": self.success_rate(a), "mean_return": self.mean_return(a)}
                for a in self.returns
            },
        }


def run_multiagent_episodes(
    env_id: str,
    agents: MultiAgentAgent | dict[str, MultiAgentAgent],
    n: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    keep_transcripts: int = 0,
    max_moves: int = 10_000,
) -> MultiAgentReport:
    """Plays ``n`` episodes of a multi-agent env through its AEC form.

    Args:
        env_id: A multi-agent id, e.g. ``"lmrl/TicTacToe-v0"``.
        agents: One agent for every seat, or a dict from agent id to agent.
        n: Number of episodes; episode ``i`` is reset with seed ``seed + i``.
        env_kwargs: Constructor arguments.
        keep_transcripts: Keep (agent, observation text, action) of this many first episodes.
        max_moves: Safety cap per episode.

    Returns:
        The per-agent results.

    Raises:
        UnknownEnvError: Not a multi-agent id.
        RuntimeError: An episode ran past ``max_moves``.
    """
    from lmrl.envs.multiagent import make_aec

    env = make_aec(env_id, **(env_kwargs or {}))
    seats = list(env.possible_agents)
    players = agents if isinstance(agents, dict) else {a: agents for a in seats}
    missing = [a for a in seats if a not in players]
    if missing:
        raise ValueError(f"no agent given for {missing}; the agents of `{env_id}` are {seats}")
    report = MultiAgentReport(env_id=env_id, seed=seed)
    for a in seats:
        report.returns[a], report.successes[a], report.final_infos[a] = [], [], []
    try:
        for i in range(n):
            env.reset(seed=seed + i)
            totals = dict.fromkeys(seats, 0.0)
            last_info: dict[str, dict[str, Any]] = {a: {} for a in seats}
            moves = 0
            transcript: list[tuple[str, str, str]] = []
            for agent in env.agent_iter():
                obs, reward, terminated, truncated, info = env.last()
                totals[agent] += float(reward)
                last_info[agent] = info
                if terminated or truncated:
                    env.step(None)
                    continue
                if moves >= max_moves:
                    raise RuntimeError(f"episode {i} of `{env_id}` ran past max_moves={max_moves}")
                action = players[agent].act(agent, obs, info, env)
                if i < keep_transcripts:
                    transcript.append((agent, obs["text"], action))
                env.step(action)
                moves += 1
            for a in seats:
                report.returns[a].append(totals[a])
                report.successes[a].append(bool(last_info[a].get("success", False)))
                report.final_infos[a].append(dict(last_info[a]))
            report.lengths.append(moves)
            if i < keep_transcripts:
                report.transcripts.append(transcript)
    finally:
        env.close()
    return report


def multiagent_corpus(env_id: str, episodes: int = 30, seed: int = 0) -> list[str]:
    """Observation and action texts of expert and random play, e.g. to train a tokenizer.

    The multi-agent counterpart of ``lmrl.pipelines.data.env_corpus``: for each of
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
