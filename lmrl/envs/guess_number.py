"""``lmrl/GuessNumber-v0``: find a secret number from "higher" / "lower" answers."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def parse_guess(text: str) -> int | None:
    """The whole number written in ``text``, or ``None``.

    Surrounding words are allowed (``"I guess 8"``), but the text must hold exactly
    one number and it must be whole (``"8.5"`` and ``"8 or 9"`` give ``None``).
    """
    found = _NUMBER.findall(text)
    if len(found) != 1 or not found[0].lstrip("+-").isdigit() or len(found[0]) > 12:
        return None
    return int(found[0])


class GuessNumberEnv(TextEnv):
    """Guess a secret whole number; after each guess the env says "too low" or "too high".

    ## Description
    A secret number is drawn uniformly from ``[low, high]`` at reset. The agent
    writes a guess as free text each turn and is told whether it was too low,
    too high or correct, together with the range still possible. Binary search
    finds the number in at most ``ceil(log2(high - low + 1)) + 1`` turns.
    Over seeds 0-199, random guessing succeeds in 32% of episodes, binary
    search in 100% (3.5 turns on average).

    ## Action Space
    Free text holding one whole number, e.g. ``"8"`` or ``"I guess 8"``. There
    are no admissible actions (``actions`` is empty): this env is for generate
    mode. Text without exactly one whole number, or a number outside
    ``[low, high]``, is penalised and explained.

    ## Observation Space
    ``{"text": str, "actions": ()}``. At reset::

        Guess the number between 1 and 16. You have 6 guesses.

    After a guess (on one line)::

        Guess the number between 1 and 16. Your guess 8 was too low.
        The number is between 9 and 16. 5 guesses left.

    After unreadable text::

        Guess the number between 1 and 16. I could not read a whole number in 'abc'.
        Answer with a whole number between 9 and 16. 4 guesses left.

    ## Rewards
    +1 for the right number; -0.05 for a wrong guess; -0.2 for text that is not a
    whole number in ``[low, high]``.

    ## Episode End
    Terminated on the right guess (``info["success"] = True``). Truncated after
    ``max_turns`` turns; unreadable answers count as turns.

    ## Arguments
    ```python
    gymnasium.make("lmrl/GuessNumber-v0", low=1, high=16, max_turns=6)
    ```
    * ``low``, ``high``: the inclusive range of the secret number.
    * ``max_turns``: turn limit.
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "generate"
    max_episode_steps: ClassVar[int | None] = 6

    #: Reward for a wrong but readable guess.
    TURN_COST: ClassVar[float] = -0.05
    #: Reward for text that is not a whole number in range.
    INVALID_PENALTY: ClassVar[float] = -0.2

    def __init__(
        self, low: int = 1, high: int = 16, max_turns: int = 6, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode=render_mode)
        if not (isinstance(low, int) and isinstance(high, int)) or low >= high:
            raise ConfigError(f"low ({low!r}) must be a whole number below high ({high!r})")
        if abs(low) >= 10**9 or abs(high) >= 10**9:
            raise ConfigError(f"low and high must lie within +-10**9, got {low} and {high}")
        if max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1, got {max_turns}")
        self.low, self.high, self.max_turns = low, high, int(max_turns)
        self.secret = low
        self.lo, self.hi = low, high  # the range still possible
        self.turn = 0

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.secret = int(self.np_random.integers(self.low, self.high + 1))
        self.lo, self.hi = self.low, self.high
        self.turn = 0
        return f"{self._intro()} You have {self.max_turns} guesses.", (), self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.turn += 1
        guess = parse_guess(action)
        if guess is None or not self.low <= guess <= self.high:
            if guess is None:
                shown = action if len(action) <= 20 else action[:17] + "..."
                event = f"I could not read a whole number in '{shown}'."
            else:
                event = f"Your guess {guess} is not between {self.low} and {self.high}."
            event += (
                f" Answer with a whole number between {self.lo} and {self.hi}."
                if self.lo < self.hi
                else f" Answer with the number {self.lo}."
            )
            reward = self.INVALID_PENALTY
        elif guess == self.secret:
            return (
                f"{self._intro()} Your guess {guess} is correct!",
                (),
                1.0,
                True,
                False,
                self._info(True),
            )
        else:
            if guess < self.secret:
                event = f"Your guess {guess} was too low."
                self.lo = max(self.lo, guess + 1)
            else:
                event = f"Your guess {guess} was too high."
                self.hi = min(self.hi, guess - 1)
            event += f" The number is {self._possible()}."
            reward = self.TURN_COST
        left = self.max_turns - self.turn
        text = f"{self._intro()} {event} {left} guess{'es' if left != 1 else ''} left."
        return text, (), reward, False, left <= 0, self._info()

    def _possible(self) -> str:
        return f"between {self.lo} and {self.hi}" if self.lo < self.hi else f"{self.lo}"

    def _intro(self) -> str:
        return f"Guess the number between {self.low} and {self.high}."

    def _info(self, success: bool = False) -> dict[str, Any]:
        return {"success": success, "turn": self.turn, "possible": (self.lo, self.hi)}

    def expert_action(self) -> str:
        """Binary search: the middle of the range still possible."""
        return str((self.lo + self.hi) // 2)

    def random_action(self, rng: np.random.Generator) -> str:
        """A uniformly random number in ``[low, high]``, as text."""
        return str(int(rng.integers(self.low, self.high + 1)))
