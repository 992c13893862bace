"""``TextEnv``: the Gymnasium base class of every lmrl text environment.

Observation: ``{"text": str, "actions": tuple[str, ...]}``. ``text`` is the
whole prompt the policy sees (the situation, and for dialogues the turns so
far); ``actions`` lists the admissible actions (empty for free-text envs).
Action: a ``str``. Envs never see token ids and never raise on bad text:
text that makes no sense for the env gets a penalty and an observation that
explains why. Only a non-string action raises :class:`InvalidActionError`.

``info`` always carries ``"success"`` (bool: the episode's goal reached so
far) and, for choose-capable envs, the same admissible list as the
observation. Envs whose ``text`` repeats the whole transcript also put the
new part (what the env says back after the action) in ``info["message"]``:
multi-turn chat prompts use it as the next user turn. Subclasses implement
:meth:`_reset`, :meth:`_step` and :meth:`expert_action`, and draw all
randomness from ``self.np_random``.
Free-text envs (no admissible actions) also override :meth:`random_action`.

Stepping an env whose episode has ended returns the final observation again,
with reward 0 and the same ``terminated`` / ``truncated`` flags; call
:meth:`reset` to start a new episode.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lmrl.errors import InvalidActionError

#: Characters a text observation or action may contain.
CHARSET: str = string.printable
MAX_TEXT_CHARS: int = 4096
MAX_ACTION_CHARS: int = 512
#: First evaluation ("held-out") episode seed. Seeds below it are training seeds; seeds from it
#: on are evaluation seeds (``lmrl train``'s final evaluation plays ``run.seed + HELD_OUT_SEED``
#: on, and the results' ``lmrl eval --seed 1000000`` rows use them). An env whose seed picks a
#: problem from a finite pool maps evaluation seeds to a pool training never draws from (the
#: suite's test fold, another dataset); envs that seed their RNG with the seed need nothing.
HELD_OUT_SEED: int = 1_000_000


def text_space(max_length: int = MAX_TEXT_CHARS) -> spaces.Text:
    """A natural-language ``Text`` space (printable charset, may be empty)."""
    return spaces.Text(max_length=max_length, min_length=0, charset=CHARSET)


def clean_action(action: str, max_chars: int = MAX_ACTION_CHARS) -> str:
    """Normalises action text: strips, drops non-printable characters, truncates."""
    kept = "".join(ch for ch in action if ch in CHARSET and ch not in "\x0b\x0c\r")
    return " ".join(kept.split())[:max_chars]


class TextEnv(gym.Env[dict, str]):
    """Base class of text envs: text observations, text actions.

    Class attributes:
        default_action_mode: ``"choose"`` if the env lists admissible actions
            the policy should pick from, else ``"generate"``.
        max_episode_steps: Step limit (the env truncates itself).
        dialogue: True if an episode is a conversation (the env answers each
            action with a new turn, ``info["message"]``): chat prompts then hold
            the earlier turns (``policy.multi_turn: auto``). False for envs whose
            observation describes the whole state anew each step.
        held_out_split: True if evaluation seeds (``>= HELD_OUT_SEED``) play a
            separate held-out split (a suite's test fold, a second dataset).
            Training code that draws seeds from a wide range (GRPO's grouped
            resets) folds them below ``HELD_OUT_SEED`` for such envs.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = None
    dialogue: ClassVar[bool] = False
    held_out_split: ClassVar[bool] = False

    @classmethod
    def agent_instructions(cls, **kwargs: Any) -> str | None:
        """What the agent must do, for a chat prompt's system message; None: from the docstring.

        By default (None) the system message is built from the class docstring's
        summary, ``## Description`` and ``## Rewards``
        (:func:`lmrl.envs.adapter.env_instructions`), which suits envs whose
        docstring speaks about the task. Envs whose docstring is written for
        developers (a suite adapter's seeds, folds and arguments) return the
        agent-facing text here instead, whole, last line included.

        Args:
            **kwargs: The env's constructor arguments (the registered ones,
                updated with the user's ``env.kwargs``).
        """
        return None

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = spaces.Dict(
            {
                "text": text_space(),
                "actions": spaces.Sequence(text_space(MAX_ACTION_CHARS), stack=False),
            }
        )
        self.action_space = text_space(MAX_ACTION_CHARS)
        self._last_text = ""
        self._last_actions: tuple[str, ...] = ()
        self._last_info: dict[str, Any] = {"success": False}
        # (terminated, truncated) once the episode is over
        self._ended: tuple[bool, bool] | None = None
        #: Steps taken in the current episode (0 right after ``reset``).
        self.steps_taken = 0

    # --- what subclasses implement ------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """Starts an episode; returns (text, admissible actions, info)."""
        raise NotImplementedError

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        """Applies cleaned action text; returns (text, actions, reward, terminated, truncated, info)."""
        raise NotImplementedError

    def expert_action(self) -> str:
        """The scripted expert's action in the current state (privileged access)."""
        raise NotImplementedError

    def random_action(self, rng: np.random.Generator) -> str:
        """A random action for the current state, drawn from ``rng`` (not ``self.np_random``).

        The default picks uniformly among the admissible actions. Free-text envs,
        whose admissible list is empty, override this with an env-specific guess.

        Args:
            rng: The agent's generator, so acting never disturbs the env's own randomness.

        Returns:
            Action text.
        """
        if not self._last_actions:
            raise NotImplementedError(
                f"{type(self).__name__} lists no admissible actions here; override random_action(rng)"
            )
        return self._last_actions[int(rng.integers(len(self._last_actions)))]

    # --- Gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        #: The seed this reset was asked for (None: none given), for ``_reset``s that map
        #: it onto a suite's own games (a fold, a dataset index) rather than draw from np_random.
        self._requested_seed = seed
        self._ended = None
        self.steps_taken = 0
        text, actions, info = self._reset(options)
        return self._obs(text, actions, info)

    def step(self, action: str):
        if not isinstance(action, str):
            raise InvalidActionError(
                f"{type(self).__name__}.step expects the action as text (str), got "
                f"{type(action).__name__} {action!r}; pass a string such as {self._example_action()!r}"
            )
        if self._ended is not None:
            terminated, truncated = self._ended
            obs = {"text": self._last_text, "actions": self._last_actions}
            return obs, 0.0, terminated, truncated, dict(self._last_info)
        self.steps_taken += 1
        text, actions, reward, terminated, truncated, info = self._step(clean_action(action))
        obs, info = self._obs(text, actions, info)
        if terminated or truncated:
            self._ended = (bool(terminated), bool(truncated))
        if self.render_mode == "human":
            print(self.render())
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        return self._last_text

    def _example_action(self) -> str:
        try:
            return self.expert_action()
        except Exception:  # e.g. step before reset: any string will do for the message
            return self._last_actions[0] if self._last_actions else "hello"

    def _obs(self, text: str, actions: tuple[str, ...], info: dict[str, Any]):
        text = text[-MAX_TEXT_CHARS:]
        self._last_text = text
        self._last_actions = tuple(actions)
        info = {"success": False, **info, "admissible_actions": tuple(actions)}
        self._last_info = info
        return {"text": text, "actions": tuple(actions)}, info
