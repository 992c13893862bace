"""Run scripted agents through catalog envs, of any kind, and summarise the episodes.

:func:`run_episodes` plays a single-agent env with an :class:`~lmrl.envs.agents.Agent`
(``act(obs, info, env)``) and reports a :class:`RolloutReport`; it plays a
multi-agent env (AEC, or Parallel through its AEC form) with multi-agent agents
(``act(agent, obs, info, env)``, one for every seat or a dict per seat) and reports
a :class:`MultiAgentReport`, with the figures per agent.

Example:
    >>> import lmrl
    >>> from lmrl.envs import ExpertAgent, run_episodes
    >>> from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent
    >>> run_episodes("lmrl/Maze-v0", ExpertAgent(), n=10).success_rate
    1.0
    >>> seats = {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(0)}
    >>> run_episodes("lmrl/TicTacToe-v0", seats, n=10).success_rate("player_0")
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmrl.envs import catalog

if TYPE_CHECKING:
    from lmrl.envs.agents import Agent
    from lmrl.envs.multiagent.agents import MultiAgentAgent

#: One step of a transcript: (observation text the agent saw, its action, the reward).
Step = tuple[str, str, float]
#: One move of a multi-agent transcript: (agent, observation text it saw, its action).
Move = tuple[str, str, str]


@dataclass
class RolloutReport:
    """Per-episode results of :func:`run_episodes`.

    Attributes:
        env_id: The env that was run.
        seed: Seed of episode 0 (episode ``i`` used ``seed + i``).
        returns: Undiscounted return per episode.
        successes: ``info["success"]`` at the end of each episode.
        lengths: Steps per episode.
        transcripts: For the first ``keep_transcripts`` episodes, the steps as
            (observation text the agent saw, its action, the reward).
        final_texts: For the same episodes, the last observation text (the
            env's answer to the final action).
    """

    env_id: str
    seed: int
    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    transcripts: list[list[Step]] = field(default_factory=list)
    final_texts: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of episodes."""
        return len(self.returns)

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes (0.0 when there are none)."""
        return sum(self.successes) / self.n if self.n else 0.0

    @property
    def mean_return(self) -> float:
        """Mean undiscounted return (NaN when there are no episodes)."""
        return sum(self.returns) / self.n if self.n else math.nan

    @property
    def mean_length(self) -> float:
        """Mean episode length in steps (NaN when there are no episodes)."""
        return sum(self.lengths) / self.n if self.n else math.nan

    def summary(self) -> dict[str, Any]:
        """The aggregate figures as a JSON-ready dict."""
        return {
            "env_id": self.env_id,
            "episodes": self.n,
            "seed": self.seed,
            "success_rate": self.success_rate,
            "mean_return": self.mean_return,
            "mean_length": self.mean_length,
        }


@dataclass
class MultiAgentReport:
    """Per-episode, per-agent results of :func:`run_episodes` on a multi-agent env.

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
    transcripts: list[list[Move]] = field(default_factory=list)

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


def run_episodes(
    env_id: str,
    agent: Agent | MultiAgentAgent | dict[str, MultiAgentAgent],
    n: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    keep_transcripts: int = 0,
    max_steps: int = 10_000,
) -> RolloutReport | MultiAgentReport:
    """Runs ``n`` episodes of ``agent`` in a fresh env made from the catalog.

    Args:
        env_id: Catalog id of any kind, for example ``"lmrl/Maze-v0"`` or ``"lmrl/TicTacToe-v0"``.
        agent: For a single-agent env, anything with ``act(obs, info, env) -> str``. For a
            multi-agent env, anything with ``act(agent, obs, info, env) -> str`` (it plays
            every seat), or a dict from agent id to such an agent.
        n: Number of episodes.
        seed: Episode ``i`` is reset with seed ``seed + i``.
        env_kwargs: Constructor keyword arguments for the env.
        keep_transcripts: Keep the transcripts of this many first episodes.
        max_steps: Safety cap per episode (agent moves, for a multi-agent env) for envs
            that never end.

    Returns:
        The per-episode results: a :class:`RolloutReport` for a single-agent env, a
        :class:`MultiAgentReport` (per agent) for a multi-agent one.

    Raises:
        UnknownEnvError: ``env_id`` is not in the catalog.
        RuntimeError: An episode ran past ``max_steps``.
        ValueError: A dict of agents leaves a seat of a multi-agent env empty.
    """
    kind = catalog.env_kind(env_id)
    env = catalog.make(env_id, **(env_kwargs or {}))
    try:
        if kind == "single":
            return _run_single(env, env_id, agent, n, seed, keep_transcripts, max_steps)
        if kind == "parallel":
            from pettingzoo.utils.conversions import parallel_to_aec

            env = parallel_to_aec(env)
        return _run_aec(env, env_id, agent, n, seed, keep_transcripts, max_steps)
    finally:
        env.close()


def _check_length(env_id: str, episode: int, steps: int, max_steps: int) -> None:
    if steps >= max_steps:
        raise RuntimeError(f"episode {episode} of `{env_id}` ran past max_steps={max_steps}")


def _run_single(
    env: Any, env_id: str, agent: Any, n: int, seed: int, keep_transcripts: int, max_steps: int
) -> RolloutReport:
    report = RolloutReport(env_id=env_id, seed=seed)
    for i in range(n):
        obs, info = env.reset(seed=seed + i)
        transcript: list[Step] = []
        total, steps, done = 0.0, 0, False
        while not done:
            _check_length(env_id, i, steps, max_steps)
            action = agent.act(obs, info, env)
            text = obs["text"] if isinstance(obs, dict) else str(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
            if i < keep_transcripts:
                transcript.append((text, action, float(reward)))
        if i < keep_transcripts:
            report.transcripts.append(transcript)
            report.final_texts.append(obs["text"] if isinstance(obs, dict) else str(obs))
        report.returns.append(total)
        report.successes.append(bool(info.get("success", False)))
        report.lengths.append(steps)
    return report


def _run_aec(
    env: Any, env_id: str, agents: Any, n: int, seed: int, keep_transcripts: int, max_steps: int
) -> MultiAgentReport:
    seats = list(env.possible_agents)
    players = agents if isinstance(agents, dict) else {a: agents for a in seats}
    missing = [a for a in seats if a not in players]
    if missing:
        raise ValueError(f"no agent given for {missing}; the agents of `{env_id}` are {seats}")
    report = MultiAgentReport(env_id=env_id, seed=seed)
    for a in seats:
        report.returns[a], report.successes[a], report.final_infos[a] = [], [], []
    for i in range(n):
        env.reset(seed=seed + i)
        totals = dict.fromkeys(seats, 0.0)
        last_info: dict[str, dict[str, Any]] = {a: {} for a in seats}
        moves = 0
        transcript: list[Move] = []
        for agent in env.agent_iter():
            obs, reward, terminated, truncated, info = env.last()
            totals[agent] += float(reward)
            last_info[agent] = info
            if terminated or truncated:
                env.step(None)
                continue
            _check_length(env_id, i, moves, max_steps)
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
    return report
