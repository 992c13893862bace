"""One seat of a multi-agent env as a single-agent :class:`~lmrl.envs.base.TextEnv`.

The other seats are played by a scripted opponent (random or expert), so a
single-agent policy can be trained or evaluated against it with the ordinary
tools (``lmrl envs rollout``, ``lmrl eval --env``, single-agent PPO). Register
such a view under an id of your own::

    lmrl.envs.register("myorg/TicTacToeVsRandom-v0", "lmrl.envs.multiagent.versus:VersusEnv",
                       kwargs={"env_id": "lmrl/TicTacToe-v0", "opponent": "random"})
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.envs.multiagent.agents import ExpertMultiAgent, RandomMultiAgent
from lmrl.envs.multiagent.base import WAIT
from lmrl.errors import ConfigError

OPPONENTS = ("random", "expert")


class VersusEnv(TextEnv):
    """Play one seat of a multi-agent env against a scripted opponent.

    ## Description
    Wraps the AEC form of a multi-agent env (``lmrl.envs.multiagent.make_aec``).
    The learner plays ``seat``; every other seat is played by ``opponent``
    (``"random"``: uniform over its admissible actions, seeded from the episode
    seed; ``"expert"``: the env's scripted expert). Turns of the learner whose
    only admissible action is ``"wait"`` are played automatically.

    ## Action Space
    The seat's action text, as in the wrapped env.

    ## Observation Space
    The seat's observation, ``{"text": str, "actions": tuple[str, ...]}``.

    ## Rewards
    The seat's rewards, summed over the opponents' moves in between.

    ## Episode End
    Terminated (or truncated) when the seat is; ``info`` is the seat's
    (``"success"`` included).

    ## Arguments
    ```python
    VersusEnv(env_id="lmrl/TicTacToe-v0", seat=None, opponent="random", env_kwargs=None)
    ```
    * ``env_id``: a multi-agent id (``lmrl.envs.list_envs(kinds=("aec", "parallel"))``).
    * ``seat``: the learner's agent id (default: the first agent).
    * ``opponent``: ``"random"`` or ``"expert"``.
    * ``env_kwargs``: constructor arguments of the wrapped env.

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "choose"

    def __init__(
        self,
        env_id: str = "lmrl/TicTacToe-v0",
        seat: str | None = None,
        opponent: str = "random",
        env_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        from lmrl.envs.multiagent import make_aec

        if opponent not in OPPONENTS:
            raise ConfigError(f"opponent must be one of {OPPONENTS}, got {opponent!r}")
        self.env = make_aec(env_id, **(env_kwargs or {}))
        self.env_id = env_id
        self.seat = seat or self.env.possible_agents[0]
        if self.seat not in self.env.possible_agents:
            raise ConfigError(
                f"seat must be one of {self.env.possible_agents} for `{env_id}`, got {seat!r}"
            )
        self.opponent = opponent
        self._opponent: Any = ExpertMultiAgent()
        self._done = False
        self._final: tuple[dict[str, Any], bool, bool, dict[str, Any]] | None = None

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        seed = int(self.np_random.integers(2**31))
        self.env.reset(seed=seed)
        self._opponent = RandomMultiAgent(seed) if self.opponent == "random" else ExpertMultiAgent()
        self._done = False
        self._advance()  # the opponents' opening moves; nothing is owed to the seat yet
        obs, info = self.env.observe(self.seat), dict(self.env.infos.get(self.seat, {}))
        return obs["text"], tuple(obs["actions"]), info

    def _advance(self) -> float:
        """Plays the other seats (and the seat's waits) until the seat must act or is done."""
        total = 0.0
        for agent in self.env.agent_iter():
            obs, reward, terminated, truncated, info = self.env.last()
            if agent == self.seat:
                total += float(reward)
                if terminated or truncated:
                    self._done = True
                    self._final = (obs, bool(terminated), bool(truncated), dict(info))
                    return total
                if tuple(obs["actions"]) != (WAIT,):
                    return total
                self.env.step(WAIT)
                continue
            if terminated or truncated:
                self.env.step(None)
            else:
                self.env.step(self._opponent.act(agent, obs, info, self.env))
        self._done = True
        return total

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.env.step(action)
        reward = self._advance()
        if self._done:
            assert self._final is not None
            obs, terminated, truncated, info = self._final
            return obs["text"], (), reward, terminated, truncated, info
        obs = self.env.observe(self.seat)
        return (
            obs["text"],
            tuple(obs["actions"]),
            reward,
            False,
            False,
            dict(self.env.infos[self.seat]),
        )

    def expert_action(self) -> str:
        """The wrapped env's expert move for the seat."""
        return self.env.unwrapped.expert_action(self.seat)

    def random_action(self, rng: np.random.Generator) -> str:
        """A random admissible action, or the wrapped env's random action for the seat."""
        if self._last_actions:
            return super().random_action(rng)
        return self.env.unwrapped.random_action(self.seat, rng)
