"""Tabular Q-learning and SARSA over hashed observation text (numpy only).

The state is a stable hash of the observation text; the actions are the
admissible actions the env lists, or, for free-text envs, a small discrete set
the env offers (``env.unwrapped.action_vocabulary()``, or the numbers
``low..high`` of a GuessNumber-style env). A table of values is kept per state
seen; unseen states are worth 0. This is what a text env looks like to the
classic algorithms (Sutton & Barto, 2018, sections 6.4 and 6.5): it works when
observation texts recur, as in the small envs, and cannot generalise between
texts, which is what LLM policies add.

Example:
    >>> import lmrl
    >>> from lmrl.baselines import train_tabular
    >>> from lmrl.envs import run_episodes
    >>> agent, curve = train_tabular("lmrl/Maze-v0", algo="q", episodes=1500, seed=0)
    >>> run_episodes("lmrl/Maze-v0", agent.greedy(), n=100, seed=10_000).success_rate > 0.5
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lmrl.envs import catalog
from lmrl.errors import ConfigError

ALGOS = ("q", "sarsa")


def state_key(text: str) -> int:
    """A stable 64-bit hash of an observation text (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def discrete_actions(obs: dict[str, Any], env: gym.Env) -> tuple[str, ...]:
    """The actions a tabular agent chooses among in ``obs``.

    The admissible actions when the observation lists some; else the env's
    ``action_vocabulary()``; else, for envs with integer ``low``/``high``
    attributes (GuessNumber), every number in between.

    Raises:
        ConfigError: The env offers none of these.
    """
    actions = tuple(obs.get("actions") or ())
    if actions:
        return actions
    base = env.unwrapped
    vocabulary = getattr(base, "action_vocabulary", None)
    if callable(vocabulary):
        return tuple(vocabulary())
    low, high = getattr(base, "low", None), getattr(base, "high", None)
    if isinstance(low, int) and isinstance(high, int) and high - low < 1000:
        return tuple(str(v) for v in range(low, high + 1))
    raise ConfigError(
        f"{type(base).__name__} lists no admissible actions here and has no action_vocabulary(); "
        "tabular baselines need a discrete action set"
    )


@dataclass
class LearningCurve:
    """Per-episode results of training.

    Attributes:
        returns: Undiscounted return of each training episode (exploring).
        successes: ``info["success"]`` at the end of each training episode.
    """

    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    def success_rate(self, last: int | None = None) -> float:
        """Success rate of the last ``last`` episodes (all when ``None``)."""
        s = self.successes[-last:] if last else self.successes
        return sum(s) / len(s) if s else 0.0

    def smoothed(self, window: int = 100) -> list[float]:
        """The returns as a moving average over ``window`` episodes."""
        r = np.asarray(self.returns, dtype=float)
        if len(r) == 0:
            return []
        c = np.cumsum(np.insert(r, 0, 0.0))
        return [
            float((c[i + 1] - c[max(0, i + 1 - window)]) / min(i + 1, window))
            for i in range(len(r))
        ]


class TabularAgent:
    """A table of action values per hashed observation, with the envs' ``act(obs, info, env)`` API.

    Args:
        epsilon: Probability of a uniformly random action in :meth:`act` (0: greedy).
        seed: Seed of the generator for exploration and tie-breaking.
    """

    def __init__(self, epsilon: float = 0.0, seed: int | None = 0) -> None:
        self.q: dict[int, dict[str, float]] = {}
        self.epsilon = float(epsilon)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def values(self, obs: dict[str, Any], actions: tuple[str, ...]) -> np.ndarray:
        """The values of ``actions`` in ``obs`` (0 where unseen)."""
        row = self.q.get(state_key(obs["text"]), {})
        return np.array([row.get(a, 0.0) for a in actions])

    def choose(
        self, obs: dict[str, Any], actions: tuple[str, ...], epsilon: float | None = None
    ) -> str:
        """Epsilon-greedy among ``actions``; ties between the best are broken at random."""
        eps = self.epsilon if epsilon is None else epsilon
        if eps > 0 and self.rng.random() < eps:
            return actions[int(self.rng.integers(len(actions)))]
        v = self.values(obs, actions)
        best = np.flatnonzero(v == v.max())
        return actions[int(best[int(self.rng.integers(len(best)))])]

    def act(self, obs: dict[str, Any], info: dict[str, Any], env: gym.Env) -> str:
        """The agent's action in ``obs`` (epsilon-greedy with its own ``epsilon``)."""
        return self.choose(obs, discrete_actions(obs, env))

    def greedy(self, seed: int | None = 0) -> TabularAgent:
        """A greedy agent sharing this agent's table (for evaluation)."""
        agent = TabularAgent(epsilon=0.0, seed=seed)
        agent.q = self.q
        return agent

    def update(self, obs: dict[str, Any], action: str, target: float, alpha: float) -> None:
        """Moves the value of (``obs``, ``action``) a step ``alpha`` towards ``target``."""
        row = self.q.setdefault(state_key(obs["text"]), {})
        old = row.get(action, 0.0)
        row[action] = old + alpha * (target - old)

    @property
    def n_states(self) -> int:
        """States in the table."""
        return len(self.q)

    def __repr__(self) -> str:
        return f"TabularAgent(states={self.n_states}, epsilon={self.epsilon})"


def train_tabular(
    env_id: str,
    algo: str = "q",
    episodes: int = 2000,
    seed: int = 0,
    *,
    alpha: float = 0.5,
    gamma: float = 0.95,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    explore_fraction: float = 0.7,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[TabularAgent, LearningCurve]:
    """Trains tabular Q-learning (``algo="q"``) or SARSA (``"sarsa"``) on a catalog env.

    Episode ``i`` is reset with seed ``seed + i``. Epsilon decays linearly from
    ``epsilon_start`` to ``epsilon_end`` over the first ``explore_fraction`` of
    the episodes. Truncated episodes bootstrap from the last state; terminated
    ones do not.

    Args:
        env_id: A catalog id (``lmrl envs list``).
        algo: ``"q"`` (off-policy, the max over next actions) or ``"sarsa"``
            (on-policy, the next action taken).
        episodes: Training episodes.
        seed: Seed of the episodes and of the agent's exploration.
        alpha: Step size.
        gamma: Discount.
        epsilon_start: Exploration at the start.
        epsilon_end: Exploration at the end.
        explore_fraction: Fraction of the episodes over which epsilon decays.
        env_kwargs: Env constructor arguments.

    Returns:
        The trained agent (greedy: ``epsilon=0``) and the learning curve.

    Raises:
        ConfigError: Unknown ``algo`` or a bad hyperparameter.
        UnknownEnvError: ``env_id`` is not in the catalog.
    """
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {ALGOS}, got {algo!r}")
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if not 0 < alpha <= 1 or not 0 <= gamma <= 1:
        raise ConfigError(
            f"alpha must be in (0, 1] and gamma in [0, 1], got alpha={alpha}, gamma={gamma}"
        )
    env = catalog.make(env_id, **(env_kwargs or {}))
    agent = TabularAgent(epsilon=0.0, seed=seed)
    curve = LearningCurve()
    decay = max(1, int(episodes * explore_fraction))
    try:
        for i in range(episodes):
            eps = epsilon_end + (epsilon_start - epsilon_end) * max(0.0, 1 - i / decay)
            obs, info = env.reset(seed=seed + i)
            action = agent.choose(obs, discrete_actions(obs, env), eps)
            total, done = 0.0, False
            while not done:
                nxt, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                done = terminated or truncated
                next_action = None
                next_actions = () if terminated else discrete_actions(nxt, env)
                if not next_actions:
                    target = float(reward)
                elif algo == "q":
                    target = float(reward) + gamma * float(agent.values(nxt, next_actions).max())
                else:
                    next_action = agent.choose(nxt, next_actions, eps)
                    target = float(reward) + gamma * float(agent.values(nxt, (next_action,))[0])
                agent.update(obs, action, target, alpha)
                if not done:
                    obs = nxt
                    action = (
                        next_action
                        if next_action is not None
                        else agent.choose(nxt, next_actions, eps)
                    )
            curve.returns.append(total)
            curve.successes.append(bool(info.get("success", False)))
    finally:
        env.close()
    return agent, curve
