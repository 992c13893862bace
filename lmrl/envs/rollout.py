"""Run scripted agents through catalog envs and summarise the episodes.

Example:
    >>> import lmrl
    >>> from lmrl.envs import ExpertAgent, run_episodes
    >>> report = run_episodes("lmrl/Maze-v0", ExpertAgent(), n=10)
    >>> report.success_rate
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lmrl.envs import catalog
from lmrl.envs.agents import Agent

#: One step of a transcript: (observation text the agent saw, its action, the reward).
Step = tuple[str, str, float]


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


def run_episodes(
    env_id: str,
    agent: Agent,
    n: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    keep_transcripts: int = 0,
    max_steps: int = 10_000,
) -> RolloutReport:
    """Runs ``n`` episodes of ``agent`` in a fresh env made from the catalog.

    Args:
        env_id: Catalog id, for example ``"lmrl/Maze-v0"``.
        agent: Anything with ``act(obs, info, env) -> str``.
        n: Number of episodes.
        seed: Episode ``i`` is reset with seed ``seed + i``.
        env_kwargs: Constructor keyword arguments for the env.
        keep_transcripts: Keep the transcripts of this many first episodes.
        max_steps: Safety cap per episode for envs that never end.

    Returns:
        The per-episode results.

    Raises:
        UnknownEnvError: ``env_id`` is not in the catalog.
        RuntimeError: An episode ran past ``max_steps``.
    """
    env = catalog.make(env_id, **(env_kwargs or {}))
    report = RolloutReport(env_id=env_id, seed=seed)
    try:
        for i in range(n):
            obs, info = env.reset(seed=seed + i)
            transcript: list[Step] = []
            total, steps, done = 0.0, 0, False
            while not done:
                if steps >= max_steps:
                    raise RuntimeError(f"episode {i} of `{env_id}` ran past max_steps={max_steps}")
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
    finally:
        env.close()
    return report
