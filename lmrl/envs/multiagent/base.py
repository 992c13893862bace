"""Base classes of lmrl's multi-agent text envs: PettingZoo AEC and Parallel, with text spaces.

Every agent sees what a single-agent :class:`~lmrl.envs.base.TextEnv` shows:
``{"text": str, "actions": tuple[str, ...]}`` (``observation_space(agent)``, a
``Dict`` of a ``Text`` and a ``Sequence`` of ``Text``), and acts with a ``str``
(``action_space(agent)``, a ``Text``). Both spaces are the same objects on every
call, and the same for every agent, so an RLlib wrapper can share one encoder.

Subclasses draw all randomness from ``self.np_random`` (seeded by ``reset``),
never raise on bad text (they penalise and explain it), and raise
:class:`~lmrl.errors.InvalidActionError` for a non-string action. They offer
``expert_action(agent)`` (privileged scripted play) and
``random_action(agent, rng)`` (uniform over the admissible actions by default).

An agent whose only admissible action is :data:`WAIT` has nothing to decide this
step (the other agent is acting); any text it sends is ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv

from lmrl.envs.base import MAX_ACTION_CHARS, MAX_TEXT_CHARS, clean_action, text_space
from lmrl.errors import InvalidActionError

#: The one admissible action of an agent that waits while another acts.
WAIT = "wait"


def text_observation_space() -> spaces.Dict:
    """The per-agent observation space: ``Dict(text=Text, actions=Sequence(Text))``."""
    return spaces.Dict(
        {
            "text": text_space(),
            "actions": spaces.Sequence(text_space(MAX_ACTION_CHARS), stack=False),
        }
    )


class _TextAgents:
    """Spaces, seeding, action checks and agent hooks shared by the AEC and Parallel bases."""

    possible_agents: list[str]
    metadata: ClassVar[dict[str, Any]]
    default_action_mode: ClassVar[str] = "choose"

    def _setup(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        obs_space, act_space = text_observation_space(), text_space(MAX_ACTION_CHARS)
        self._observation_spaces = {a: obs_space for a in self.possible_agents}
        self._action_spaces = {a: act_space for a in self.possible_agents}
        self.np_random, self.np_random_seed = seeding.np_random(None)

    def observation_space(self, agent: str) -> spaces.Dict:
        """``Dict(text=Text, actions=Sequence(Text))``, the same object every call."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Text:
        """``Text``, the same object every call."""
        return self._action_spaces[agent]

    def _seed(self, seed: int | None) -> None:
        if seed is not None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)

    def _text_action(self, agent: str, action: Any) -> str:
        if not isinstance(action, str):
            raise InvalidActionError(
                f"{type(self).__name__}.step expects {agent}'s action as text (str), got "
                f"{type(action).__name__} {action!r}; pass a string such as {self._example(agent)!r}"
            )
        return clean_action(action)

    def _example(self, agent: str) -> str:
        try:
            return self.expert_action(agent)
        except Exception:  # before reset: any string will do for the message
            return WAIT

    def _observation(self, agent: str) -> dict[str, Any]:
        return {
            "text": self.observe_text(agent)[-MAX_TEXT_CHARS:],
            "actions": self.admissible(agent),
        }

    # --- what subclasses implement --------------------------------------------------------
    def observe_text(self, agent: str) -> str:
        """What ``agent`` sees now."""
        raise NotImplementedError

    def admissible(self, agent: str) -> tuple[str, ...]:
        """``agent``'s admissible actions now (empty when it cannot act)."""
        raise NotImplementedError

    def agent_info(self, agent: str) -> dict[str, Any]:
        """``agent``'s info; always holds ``"success"`` (bool)."""
        raise NotImplementedError

    def expert_action(self, agent: str) -> str:
        """The scripted expert's action for ``agent`` now (privileged access to the state)."""
        raise NotImplementedError

    def random_action(self, agent: str, rng: np.random.Generator) -> str:
        """A uniformly random admissible action for ``agent``, drawn from ``rng``."""
        actions = self.admissible(agent)
        return actions[int(rng.integers(len(actions)))] if actions else WAIT

    def render(self) -> str | None:
        """The current agent's (or the first agent's) observation text, in ``ansi`` mode."""
        if self.render_mode is None:
            return None
        agent = getattr(self, "agent_selection", None) or self.possible_agents[0]
        return self.observe_text(agent)

    def close(self) -> None:
        """Nothing to release."""


class TextAECEnv(_TextAgents, AECEnv):
    """A turn-based (AEC) text env. Subclasses implement the game in four hooks.

    ``_start(options) -> first agent``; ``_move(agent, text) -> (rewards, game_over,
    next_agent)`` where ``rewards`` maps agents to this move's rewards; plus
    ``observe_text``, ``admissible``, ``agent_info`` and ``expert_action``.
    The base keeps PettingZoo's bookkeeping (cumulative rewards, terminations,
    dead steps); once the game is over every agent is terminated and must be
    stepped with ``None``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "text_aec",
        "is_parallelizable": False,
    }

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self._setup(render_mode)
        self.agents: list[str] = []

    def _start(self, options: dict[str, Any] | None) -> str:
        raise NotImplementedError

    def _move(self, agent: str, text: str) -> tuple[dict[str, float], bool, str]:
        raise NotImplementedError

    def observe(self, agent: str) -> dict[str, Any]:
        """``{"text", "actions"}`` for ``agent``; ``actions`` is empty unless it is its turn."""
        return self._observation(agent)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self._seed(seed)
        self.agents = list(self.possible_agents)
        self.agent_selection = self._start(options)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: self.agent_info(a) for a in self.agents}

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        text = self._text_action(agent, action)
        self._cumulative_rewards[agent] = 0.0
        self.rewards = {a: 0.0 for a in self.agents}
        rewards, game_over, nxt = self._move(agent, text)
        for a, r in rewards.items():
            self.rewards[a] += float(r)
        if game_over:
            self.terminations = {a: True for a in self.agents}
        self.infos = {a: self.agent_info(a) for a in self.agents}
        self.agent_selection = nxt
        self._accumulate_rewards()
        if self.render_mode == "human":
            print(self.render())


class TextParallelEnv(_TextAgents, ParallelEnv):
    """A simultaneous-move (Parallel) text env.

    Subclasses implement ``_start(options)``, ``_step_all(actions) -> (rewards,
    game_over)`` (``actions`` maps every live agent to cleaned text; a missing
    agent sends ``""``), plus ``observe_text``, ``admissible``, ``agent_info``
    and ``expert_action``. When the game is over every agent is terminated and
    ``agents`` becomes empty.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "text_parallel",
    }

    def __init__(self, render_mode: str | None = None) -> None:
        self._setup(render_mode)
        self.agents: list[str] = []

    def _start(self, options: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def _step_all(self, actions: dict[str, str]) -> tuple[dict[str, float], bool]:
        raise NotImplementedError

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self._seed(seed)
        self.agents = list(self.possible_agents)
        self._start(options)
        return (
            {a: self._observation(a) for a in self.agents},
            {a: self.agent_info(a) for a in self.agents},
        )

    def step(self, actions: dict[str, Any]):
        live = list(self.agents)
        texts = {a: self._text_action(a, actions[a]) if a in actions else "" for a in live}
        rewards, game_over = self._step_all(texts)
        obs = {a: self._observation(a) for a in live}
        rew = {a: float(rewards.get(a, 0.0)) for a in live}
        terms = {a: bool(game_over) for a in live}
        truncs = {a: False for a in live}
        infos = {a: self.agent_info(a) for a in live}
        if game_over:
            self.agents = []
        if self.render_mode == "human":
            print(self.render())
        return obs, rew, terms, truncs, infos
