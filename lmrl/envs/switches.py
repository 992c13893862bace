"""``lmrl/Switches-v0``: flip on/off switches until they match a goal, then say done."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

#: Switch names, in the order the first ``n_switches`` are used.
SWITCH_NAMES: tuple[str, ...] = ("lamp", "fan", "radio", "heater", "tv", "alarm")
DONE = "done"
LAYOUTS: tuple[str, ...] = ("grouped", "paired")


class SwitchesEnv(TextEnv):
    """Set each switch to its goal state, then say done.

    ## Description
    A room has ``n_switches`` on/off switches (by default three: lamp, fan,
    radio). Each episode draws a goal state and a different start state. The
    right action depends on comparing the two: toggle a switch whose state
    differs from its goal, and say ``done`` once they all match. Saying
    ``done`` ends the episode, so a policy must both compare and know when to
    stop. Over seeds 0-199 a uniformly random agent succeeds in 8.0% of
    episodes (3 switches), the expert in 100%.

    ## Action Space
    ``"toggle NAME"`` for each switch, and ``"done"``: ``n_switches + 1``
    admissible actions, always in this order. Text naming a switch
    (``"lamp"``, ``"switch the fan"``) toggles it; ``"done"`` or ``"stop"``
    ends; other text costs the step and -0.1, changes nothing, and is explained.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``. With ``layout="grouped"``
    (the default) the goal and the current state are two sentences::

        Goal: lamp on, fan off, radio on. Now: lamp off, fan off, radio on.

    With ``layout="paired"`` each switch's state stands next to its goal::

        lamp: off, goal on. fan: off, goal off. radio: on, goal on.

    After a step the text starts with what happened (``You toggled the lamp.``).

    ## Rewards
    1 when the episode ends with ``done`` and every switch in its goal state;
    0 otherwise (no step cost), except -0.1 for text that names no switch.

    ## Episode End
    Terminated on ``done`` (``info["success"]`` says whether the switches
    matched the goal). Truncated after ``max_steps`` steps (default
    ``2 * n_switches + 2``), unsuccessful.

    ## Arguments
    ```python
    gymnasium.make("lmrl/Switches-v0", n_switches=3, max_steps=None, layout="grouped")
    ```
    * ``n_switches``: 1 to 6 switches (``lamp``, ``fan``, ``radio``, ``heater``, ``tv``, ``alarm``).
    * ``max_steps``: step limit; ``None``: ``2 * n_switches + 2``.
    * ``layout``: ``"grouped"`` (goal sentence, then state sentence) or ``"paired"``
      (each switch's state beside its goal).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 8

    def __init__(
        self,
        n_switches: int = 3,
        max_steps: int | None = None,
        layout: Literal["grouped", "paired"] = "grouped",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if not 1 <= n_switches <= len(SWITCH_NAMES):
            raise ConfigError(
                f"n_switches must be between 1 and {len(SWITCH_NAMES)}, got {n_switches}"
            )
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        if layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.names = SWITCH_NAMES[:n_switches]
        self.max_steps = int(max_steps) if max_steps is not None else 2 * n_switches + 2
        self.layout = layout
        self.actions = tuple(f"toggle {name}" for name in self.names) + (DONE,)
        self.state = [False] * n_switches
        self.goal = [False] * n_switches
        self.steps = 0

    # --- episode ---------------------------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        n = len(self.names)
        self.goal = [bool(b) for b in self.np_random.integers(0, 2, n)]
        # A start that differs from the goal in at least one switch: drawn uniformly among those.
        offset = int(self.np_random.integers(1, 2**n))
        self.state = [g != bool(offset >> i & 1) for i, g in enumerate(self.goal)]
        self.steps = 0
        return self._describe(), self.actions, self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.steps += 1
        words = action.lower().replace(",", " ").replace(".", " ").split()
        target = next((i for i, name in enumerate(self.names) if name in words), None)
        if target is None and any(w in ("done", "stop") for w in words):
            ok = self.state == self.goal
            end = "All switches match the goal." if ok else "Not all switches match the goal."
            return f"You said done. {end}", (), float(ok), True, False, self._info(success=ok)
        if target is None:
            shown = action if len(action) <= 20 else action[:17] + "..."
            event = f"I could not read a switch in '{shown}'. Say {self._say()}."
        else:
            self.state[target] = not self.state[target]
            event = f"You toggled the {self.names[target]}."
        reward = 0.0 if target is not None else -0.1
        truncated = self.steps >= self.max_steps
        return f"{event} {self._describe()}", self.actions, reward, False, truncated, self._info()

    # --- helpers ------------------------------------------------------------------------
    def _describe(self) -> str:
        if self.layout == "paired":
            return " ".join(
                f"{name}: {_word(s)}, goal {_word(g)}."
                for name, s, g in zip(self.names, self.state, self.goal, strict=True)
            )
        goal = ", ".join(
            f"{name} {_word(g)}" for name, g in zip(self.names, self.goal, strict=True)
        )
        now = ", ".join(
            f"{name} {_word(s)}" for name, s in zip(self.names, self.state, strict=True)
        )
        return f"Goal: {goal}. Now: {now}."

    def _say(self) -> str:
        return ", ".join(self.actions[:-1]) + f" or {DONE}"

    def _info(self, success: bool = False) -> dict[str, Any]:
        return {
            "success": success,
            "mismatched": sum(s != g for s, g in zip(self.state, self.goal, strict=True)),
            "steps": self.steps,
        }

    def random_action(self, rng) -> str:  # noqa: D102 - base docstring
        # Uniform over the actions, also after the episode ended (the base has nothing to draw from).
        return self.actions[int(rng.integers(len(self.actions)))]

    def expert_action(self) -> str:
        """Toggle the first switch that differs from its goal; ``done`` once none does."""
        for name, s, g in zip(self.names, self.state, self.goal, strict=True):
            if s != g:
                return f"toggle {name}"
        return DONE


def _word(on: bool) -> str:
    return "on" if on else "off"
