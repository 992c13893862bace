"""BabyAI-Text, the way GLAM defines it, over minigrid's BabyAI levels: ``babyai/GoToLocal-v0``, ...

GLAM (Carta et al., 2023, "Grounding Large Language Models in Interactive
Environments with Online Reinforcement Learning") turned BabyAI into a text
game: the agent's 7x7 partial view described in sentences, six actions named
in words, the mission as the goal. minigrid ships the levels and the BabyAI
bot but no text wrapper; this module is that wrapper, written after GLAM's
description (``babyai-text``'s ``gen_graph``).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.envs.suites import match_admissible, quote, register_suite
from lmrl.errors import ConfigError

#: GLAM's six actions, in minigrid's action order (0-5).
ACTIONS: tuple[str, ...] = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle")
_NOOP = 6  # minigrid's "done": changes nothing, uses a step; what a non-admissible text does

#: The 19 BabyAI levels of the ICLR 2019 paper, plus two single-room levels near GLAM's tasks.
LEVELS: tuple[str, ...] = (
    "GoToObj", "GoToRedBallGrey", "GoToRedBall", "GoToRedBallNoDists", "GoToLocal",
    "PutNextLocal", "PickupLoc", "GoToObjMaze", "GoTo", "Pickup", "UnblockPickup", "Open",
    "Unlock", "UnlockLocal", "PutNextS5N2", "Synth", "SynthLoc", "GoToSeq", "SynthSeq",
    "GoToImpUnlock", "BossLevel",
)  # fmt: skip
ENV_IDS: dict[str, tuple[str, dict]] = {
    f"babyai/{level}-v0": ("lmrl.envs.suites.babyai_text:BabyAITextEnv", {"level": level})
    for level in LEVELS
}

_UNSEEN, _EMPTY, _WALL, _DOOR = 0, 1, 2, 4
_DOOR_STATES = {0: "open", 1: "closed", 2: "locked"}


def _steps(n: int, where: str) -> str:
    return f"{n} step{'s' if n > 1 else ''} {where}"


def describe_view(image: np.ndarray, carrying: tuple[str, str] | None = None) -> list[str]:
    """GLAM's sentences for the agent's egocentric view.

    Args:
        image: minigrid's ``obs["image"]``, shape ``(view, view, 3)`` indexed
            ``[x, y]`` with the agent at the bottom middle, facing up.
        carrying: ``(colour, type)`` of the object the agent carries, if any.

    Returns:
        Sentences such as ``"You see a wall 2 steps forward"`` and ``"You see a
        red ball 1 step left and 3 steps forward"``: what the agent carries, the
        first wall straight ahead, left and right (when nothing is before it),
        then every visible object, column by column from the left.
    """
    from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

    size = image.shape[0]
    ax, ay = size // 2, size - 1
    out = []
    if carrying is not None:
        out.append(f"You carry a {carrying[0]} {carrying[1]}")
    lines = (
        ("forward", [(ax, y) for y in range(ay - 1, -1, -1)]),
        ("left", [(x, ay) for x in range(ax - 1, -1, -1)]),
        ("right", [(x, ay) for x in range(ax + 1, size)]),
    )
    for where, cells in lines:
        for n, (x, y) in enumerate(cells, start=1):
            kind = int(image[x, y, 0])
            if kind in (_UNSEEN, _EMPTY):
                continue
            if kind == _WALL:
                out.append(f"You see a wall {_steps(n, where)}")
            break  # the first thing in line hides what lies behind it
    for x in range(size):
        for y in range(size):
            kind, colour, state = (int(v) for v in image[x, y])
            if kind in (_UNSEEN, _EMPTY, _WALL) or (x, y) == (ax, ay):
                continue
            name = f"{IDX_TO_COLOR[colour]} {IDX_TO_OBJECT[kind]}"
            if kind == _DOOR:
                door_state = _DOOR_STATES.get(state, "closed")
                name = f"{'an' if door_state == 'open' else 'a'} {door_state} {name}"
            else:
                name = f"a {name}"
            dx, dy = x - ax, ay - y
            if dx == 0:
                where = _steps(dy, "forward")
            elif dy == 0:
                where = _steps(abs(dx), "right" if dx > 0 else "left")
            else:
                where = (
                    f"{_steps(abs(dx), 'right' if dx > 0 else 'left')} and {_steps(dy, 'forward')}"
                )
            out.append(f"You see {name} {where}")
    return out


class BabyAITextEnv(TextEnv):
    """A BabyAI level in words, as GLAM's BabyAI-Text: partial view described, six actions.

    ## Description
    minigrid's BabyAI ``level`` (``BabyAI-{level}-v0``): a grid world where
    the agent must carry out a mission in words ("go to the red ball", "open
    the purple door", "put the blue key next to the green box"). It sees a
    7x7 square ahead of it (not through walls), described as GLAM does: what
    it carries, the nearest wall straight ahead, left and right, and each
    visible object with its offset (``1 step left and 2 steps forward``).
    Seeds are minigrid's own: ``reset(seed=s)`` resets the level with seed ``s``
    (the seed goes to minigrid's RNG, not to a finite pool of levels, so
    evaluation seeds, ``s >= HELD_OUT_SEED``, need no held-out split).

    Where this differs from GLAM: the levels are minigrid 3.2.0's (GLAM used
    its own ``BabyAI-MixedTrainLocal``/``MixedTestLocal`` mixtures on a fork of
    gym-minigrid, so the same seed gives a different layout); open doors read
    "an open ... door" (GLAM printed "a open"); GLAM scored all six actions and
    never saw free text, here other text is a penalised no-op; the prompt below
    is GLAM's layout, without its few-shot header.

    ## Action Space
    One of ``"turn left"``, ``"turn right"``, ``"go forward"``, ``"pick up"``,
    ``"drop"``, ``"toggle"`` (case and spacing ignored); all six are always
    admissible. Any other text is minigrid's no-op ``done`` action (the step
    is used) and costs ``invalid_action_penalty``; the observation says so.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``, the text laid out as GLAM's
    prompt, with the last ``history`` observations and the actions between::

        Possible actions of the agent: turn left, turn right, go forward, pick up, drop, toggle
        Goal of the agent: go to the red ball
        Observation 0: You see a wall 3 steps forward, You see a red ball 1 step left and 2 steps forward
        Action 0: go forward
        Observation 1: You see a wall 2 steps forward, You see a red ball 1 step left and 1 step forward

    ## Rewards
    BabyAI's: ``1 - 0.9 * steps / max_steps`` on the step that completes the
    mission, else 0; plus ``invalid_action_penalty`` (-0.1) for text that is
    not one of the six actions.

    ## Episode End
    Terminated when the mission is done (``info["success"] = True``) or
    failed (e.g. the wrong object picked up in some levels). Truncated at the
    level's ``max_steps`` (minigrid's default for the level unless given).

    ## Arguments
    ```python
    lmrl.envs.make("babyai/GoToLocal-v0", history=3, max_steps=None, invalid_action_penalty=-0.1)
    ```
    * ``level``: the BabyAI level name without ``BabyAI-``/``-v0`` (set by each id).
    * ``history``: observations shown (the current one and ``history - 1`` before it; GLAM: 3).
    * ``max_steps``: step limit; ``None`` keeps the level's own.
    * ``invalid_action_penalty``: reward for text that is not an action (<= 0).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    The expert is minigrid's ``BabyAIBot`` (it solves every level listed here;
    it is asked each step and replans after the agent's own actions). The
    random agent picks uniformly among the six actions.

    ## Version History
    * v0: Initial version (minigrid 3.2.0).
    """

    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = None  # the level's own

    @classmethod
    def agent_instructions(cls, **_: Any) -> str:
        """The chat system message: the grid world, the view's wording and the six actions."""
        return (
            "You are an agent in a grid world (BabyAI). Carry out the mission given as the "
            "goal of the agent, such as going to an object, picking it up or opening a door.\n\n"
            "Each turn you are told what you see ahead of you: walls and objects, each with its "
            "position relative to you (steps left or right, steps forward). 'turn left' and "
            "'turn right' turn you on the spot, 'go forward' moves you one step ahead, 'pick up' "
            "takes the object just in front of you, 'drop' puts down what you carry, 'toggle' "
            "opens the door just in front of you.\n\n"
            "Rewards: 1 when the mission is done, less the more steps it took; 0 if it is not "
            "done in time.\n\n"
            "Answer with the action only."
        )

    def __init__(
        self,
        level: str = "GoToLocal",
        history: int = 3,
        max_steps: int | None = None,
        invalid_action_penalty: float = -0.1,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        import gymnasium as gym
        import minigrid  # noqa: F401 - registers the BabyAI levels

        level_id = f"BabyAI-{level}-v0"
        if level_id not in gym.registry:
            known = sorted(k[7:-3] for k in gym.registry if k.startswith("BabyAI-"))
            raise ConfigError(f"level must be a BabyAI level such as {known[:5]}, got {level!r}")
        if history < 1:
            raise ConfigError(f"history must be >= 1, got {history}")
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 or None, got {max_steps}")
        if invalid_action_penalty > 0:
            raise ConfigError(f"invalid_action_penalty must be <= 0, got {invalid_action_penalty}")
        kwargs = {} if max_steps is None else {"max_steps": int(max_steps)}
        self.level, self.history = level, int(history)
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.world = gym.make(level_id, **kwargs).unwrapped
        self.max_steps = int(self.world.max_steps)
        self._requested_seed: int | None = None
        self.mission = ""
        self._views: list[str] = []
        self._taken: list[str] = []
        self._bot: Any = None
        self._bot_step = -1  # the step at which the bot last planned
        self._bot_action = ACTIONS[2]
        self._last_index: int | None = None
        self.steps = 0
        self.success = False

    # --- episode ------------------------------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        seed = self._requested_seed
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        with contextlib.redirect_stdout(io.StringIO()):  # minigrid prints rejected layouts
            obs, _ = self.world.reset(seed=seed)
        self.mission = str(obs["mission"])
        self._views, self._taken = [self._view(obs)], []
        self._bot, self._bot_step, self.steps, self.success = None, -1, 0, False
        self._last_index = None
        return self._text(), ACTIONS, self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        chosen = match_admissible(action, ACTIONS)
        index = ACTIONS.index(chosen) if chosen is not None else _NOOP
        obs, reward, terminated, truncated, _ = self.world.step(index)
        self.steps += 1
        self.success = bool(terminated and reward > 0)
        view = self._view(obs)
        if chosen is None:
            reward = float(reward) + self.invalid_action_penalty
            view = (
                f"{quote(action)} is not an action; nothing happened. Say one of: "
                f"{', '.join(ACTIONS)}. {view}"
            )
        self._views.append(view)
        self._taken.append(chosen if chosen is not None else "(invalid)")
        self._last_index = index
        return self._text(), ACTIONS, float(reward), bool(terminated), bool(truncated), self._info()

    # --- text ------------------------------------------------------------------------------
    def _view(self, obs: dict[str, Any]) -> str:
        carried = self.world.carrying
        carrying = (carried.color, carried.type) if carried is not None else None
        sentences = describe_view(obs["image"], carrying)
        return ", ".join(sentences) if sentences else "You see nothing special"

    def _text(self) -> str:
        first = max(0, len(self._views) - self.history)
        lines = [
            f"Possible actions of the agent: {', '.join(ACTIONS)}",
            f"Goal of the agent: {self.mission}",
        ]
        for i in range(first, len(self._views)):
            lines.append(f"Observation {i - first}: {self._views[i]}")
            if i < len(self._taken):
                lines.append(f"Action {i - first}: {self._taken[i]}")
        return "\n".join(lines)

    def _info(self) -> dict[str, Any]:
        return {"success": self.success, "mission": self.mission, "steps": self.steps}

    # --- agents ----------------------------------------------------------------------------
    def expert_action(self) -> str:
        """minigrid's BabyAIBot's action (it replans after actions it did not suggest)."""
        from minigrid.utils.baby_ai_bot import BabyAIBot

        if self._bot_step == self.steps:
            return self._bot_action
        try:
            if self._bot is None or self._bot_step != self.steps - 1:
                self._bot = BabyAIBot(self.world)  # first call, or the bot missed steps
                index = self._bot.replan()
            else:
                index = self._bot.replan(self._last_index)
        except Exception:  # the bot gives up (e.g. a box it needed was opened)
            self._bot, index = None, 2
        self._bot_step = self.steps
        self._bot_action = ACTIONS[int(index)] if int(index) < len(ACTIONS) else ACTIONS[0]
        return self._bot_action

    def close(self) -> None:
        """Closes the minigrid level."""
        self.world.close()
        super().close()


def register_envs() -> None:
    """Registers the ``babyai/*`` ids (the ``lmrl.envs`` entry point of the ``babyai`` extra)."""
    register_suite(ENV_IDS, suite="BabyAI (minigrid)", extra="babyai", modules=("minigrid",))
