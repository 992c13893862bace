"""``lmrl/Arithmetic-v0``: answer one arithmetic problem; the answer is checked exactly."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

# A whole number standing on its own: not glued to letters, digits or a decimal point.
_INTEGER = re.compile(r"(?<![\w.])[-+]?\d+(?!\w|\.\d)")

#: Per level: the inclusive range random answers are drawn from (covers every answer).
ANSWER_RANGE: dict[int, tuple[int, int]] = {1: (0, 40), 2: (0, 200), 3: (-180, 360)}


def parse_answer(text: str) -> int | None:
    """The last whole number in ``text`` (``"3 + 4 = 7"`` gives 7), or ``None``.

    Numbers glued to letters (``"31m"``) or decimals (``"3.5"``) do not count.
    """
    found = _INTEGER.findall(text)
    if not found or len(found[-1].lstrip("+-")) > 12:
        return None
    return int(found[-1])


def make_problem(level: int, rng: np.random.Generator) -> tuple[str, int]:
    """A problem of the given level and its answer, drawn from ``rng``.

    Level 1: addition or subtraction of numbers up to 20 (answers 0-40).
    Level 2: two-digit addition or subtraction, or a times table up to 12x12 (answers 0-198).
    Level 3: three numbers, two operations, with precedence and parentheses (answers -178 to 360).
    """

    def n(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1))

    if level == 1:
        a, b = n(0, 20), n(0, 20)
        if rng.random() < 0.5:
            return f"{a} + {b}", a + b
        a, b = max(a, b), min(a, b)
        return f"{a} - {b}", a - b
    if level == 2:
        kind = int(rng.integers(3))
        if kind == 0:
            a, b = n(10, 99), n(10, 99)
            return f"{a} + {b}", a + b
        if kind == 1:
            a, b = n(10, 99), n(10, 99)
            a, b = max(a, b), min(a, b)
            return f"{a} - {b}", a - b
        a, b = n(2, 12), n(2, 12)
        return f"{a} * {b}", a * b
    kind = int(rng.integers(4))
    a, b, c = n(2, 20), n(2, 20), n(2, 9)
    if kind == 0:
        return f"({a} + {b}) * {c}", (a + b) * c
    if kind == 1:
        return f"{a} + {b} * {c}", a + b * c
    if kind == 2:
        return f"{a} - {b} * {c}", a - b * c
    return f"({a} - {b}) * {c}", (a - b) * c


class ArithmeticEnv(TextEnv):
    """Solve one arithmetic problem; the answer is a whole number, checked exactly.

    ## Description
    Each episode is one problem of the chosen difficulty ``level`` (see
    :func:`make_problem`): level 1 adds or subtracts numbers up to 20, level 2
    uses two-digit numbers and times tables, level 3 combines three numbers
    with precedence and parentheses. The agent answers once. Over seeds
    0-199 at level 1, a random agent (a uniform number in the level's answer
    range) succeeds in 3% of episodes (0% at level 2, 0.5% at level 3), the expert (which computes the
    answer) in 100%.

    ## Action Space
    Free text whose last whole number is the answer: ``"42"``, ``"The answer
    is 42."`` or ``"17 + 25 = 42"``. There are no admissible actions: this env
    is for generate mode. Text without a whole number standing on its own
    (``"banana"``, ``"3.5"``, ``"31m"``) is unparseable and penalised.

    ## Observation Space
    ``{"text": str, "actions": ()}``. At reset::

        Compute 17 + 25. Answer with a whole number.

    After the answer: ``17 + 25 = 42. Your answer 42 is right.``, ``... Your
    answer 40 is wrong.`` or ``... I could not read a whole number in 'banana'.``

    ## Rewards
    +1 for the right answer; 0 for a wrong one; -0.2 for unparseable text.

    ## Episode End
    Terminated after the one answer (``info["success"] = True`` if it was right).

    ## Arguments
    ```python
    gymnasium.make("lmrl/Arithmetic-v0", level=1)
    ```
    * ``level``: difficulty, 1, 2 or 3.
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "generate"
    max_episode_steps: ClassVar[int | None] = 1

    UNPARSEABLE_PENALTY: ClassVar[float] = -0.2

    def __init__(self, level: int = 1, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        if level not in ANSWER_RANGE:
            raise ConfigError(f"level must be 1, 2 or 3, got {level!r}")
        self.level = int(level)
        self.problem, self.answer = "0 + 0", 0

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.problem, self.answer = make_problem(self.level, self.np_random)
        return f"Compute {self.problem}. Answer with a whole number.", (), self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        given = parse_answer(action)
        if given is None:
            shown = action if len(action) <= 20 else action[:17] + "..."
            verdict, reward = (
                f"I could not read a whole number in '{shown}'.",
                self.UNPARSEABLE_PENALTY,
            )
        elif given == self.answer:
            verdict, reward = f"Your answer {given} is right.", 1.0
        else:
            verdict, reward = f"Your answer {given} is wrong.", 0.0
        text = f"{self.problem} = {self.answer}. {verdict}"
        return text, (), reward, True, False, self._info(given == self.answer)

    def _info(self, success: bool = False) -> dict[str, Any]:
        return {"success": success, "level": self.level, "problem": self.problem}

    def expert_action(self) -> str:
        """The right answer."""
        return str(self.answer)

    def random_action(self, rng: np.random.Generator) -> str:
        """A uniform whole number in the level's answer range."""
        lo, hi = ANSWER_RANGE[self.level]
        return str(int(rng.integers(lo, hi + 1)))

    def action_vocabulary(self) -> tuple[str, ...]:
        """Every answer of the level's range, as text (a discrete action set for tabular baselines)."""
        lo, hi = ANSWER_RANGE[self.level]
        return tuple(str(v) for v in range(lo, hi + 1))
