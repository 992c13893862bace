"""``lmrl/TicTacToe-v0``: two agents play tic-tac-toe, naming their moves in words (AEC)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, ClassVar

from lmrl.envs.multiagent.base import TextAECEnv
from lmrl.errors import ConfigError

#: Cell names in reading order (index 0 is the top left cell).
CELLS: tuple[str, ...] = (
    "top left", "top middle", "top right",
    "middle left", "center", "middle right",
    "bottom left", "bottom middle", "bottom right",
)  # fmt: skip
_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
_PREFERENCE = (4, 0, 2, 6, 8, 1, 3, 5, 7)  # the expert's tie-break: center, corners, edges
_COORD = re.compile(r"\b([abc])\s*([123])\b")
_DIGIT = re.compile(r"\b([1-9])\b")
_WORD = re.compile(r"[a-z]+")
MARKS = ("X", "O")


def parse_cell(text: str) -> int | None:
    """The cell a text names, as an index 0-8, or ``None``.

    Understood: names (``"top left"``, ``"center"``, ``"middle right"``, also
    ``"upper"``/``"lower"``/``"centre"``), coordinates ``a1``-``c3`` (column
    a-c from the left, row 1-3 from the top), and a digit 1-9 in reading order.
    """
    low = text.lower()
    m = _COORD.search(low)
    if m:
        return (int(m.group(2)) - 1) * 3 + "abc".index(m.group(1))
    words = set(_WORD.findall(low))
    mid = bool(words & {"middle", "center", "centre", "mid"})
    row = (
        0 if words & {"top", "upper"} else 2 if words & {"bottom", "lower"} else 1 if mid else None
    )
    col = 0 if "left" in words else 2 if "right" in words else 1 if mid else None
    if row is not None and col is not None:
        return row * 3 + col
    m = _DIGIT.search(low)
    if m:
        return int(m.group(1)) - 1
    return None


def winner(board: tuple[str, ...]) -> str | None:
    """``"X"`` or ``"O"`` if that mark has a line, else ``None``."""
    for a, b, c in _LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return board[a]
    return None


@cache
def _value(board: tuple[str, ...], mark: str) -> int:
    """Minimax value of ``board`` with ``mark`` to move, from ``mark``'s side: 1 win, 0 draw, -1 loss."""
    won = winner(board)
    if won is not None:
        return 1 if won == mark else -1
    if all(board):
        return 0
    other = "O" if mark == "X" else "X"
    return max(
        -_value(board[:i] + (mark,) + board[i + 1 :], other) for i in range(9) if not board[i]
    )


def best_cell(board: tuple[str, ...], mark: str) -> int:
    """A minimax-optimal cell for ``mark`` (ties: center, corners, edges)."""
    other = "O" if mark == "X" else "X"
    return max(
        (i for i in _PREFERENCE if not board[i]),
        key=lambda i: -_value(board[:i] + (mark,) + board[i + 1 :], other),
    )


class TicTacToeEnv(TextAECEnv):
    """Tic-tac-toe for two text agents; the legal moves are offered as admissible actions.

    ## Description
    ``player_0`` plays X and moves first, ``player_1`` plays O. Each agent sees
    the board in words and, on its turn, the legal moves. A line of three wins.
    Text that names no empty cell is an illegal move: it costs
    ``illegal_penalty`` and the same agent tries again; after ``max_illegal``
    illegal moves in a row it forfeits the game (it loses). Over seeds 0-199,
    random against random: X wins 61.5%, O 30%, draws 8.5%; the minimax
    expert never loses (as X against a random O it wins 96%, as O it wins 85%
    and draws 15%; expert against expert always draws).

    ## Action Space
    Text naming a cell: ``"top left"``, ``"top middle"``, ``"top right"``,
    ``"middle left"``, ``"center"``, ``"middle right"``, ``"bottom left"``,
    ``"bottom middle"``, ``"bottom right"`` (also coordinates ``a1``-``c3``,
    column then row from the top left, or a digit 1-9 in reading order; see
    :func:`parse_cell`). The admissible actions are the names of the empty
    cells (up to 9: set ``policy.max_candidates`` to 9 to score them all).

    ## Observation Space
    Per agent ``{"text": str, "actions": tuple[str, ...]}``; ``actions`` is
    empty when it is not the agent's turn. For example (on one line)::

        Tic-tac-toe, you are O. O played center. X played top left.
        Board: top X _ _, middle _ O _, bottom _ _ _. Your move.

    (``_`` marks an empty cell; the last two moves are named.)

    ## Rewards
    +1 for a win, -1 for a loss (or a forfeit), 0 for a draw, given to both
    agents when the game ends; ``illegal_penalty`` (-0.1) for each illegal move.

    ## Episode End
    Every agent is terminated when a line is made, the board is full, or an
    agent forfeits. ``info["success"]`` is True for an agent that won or drew;
    ``info["outcome"]`` is ``"win"``, ``"loss"`` or ``"draw"`` (``None`` during play).

    ## Arguments
    ```python
    lmrl.envs.multiagent.make_aec("lmrl/TicTacToe-v0", max_illegal=3, illegal_penalty=-0.1)
    ```
    * ``max_illegal``: illegal moves in a row that forfeit the game (>= 1).
    * ``illegal_penalty``: reward for each illegal move (<= 0).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the acting agent's view).

    ## Version History
    * v0: Initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "tictactoe_v0",
        "is_parallelizable": False,
    }
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 27

    def __init__(
        self, max_illegal: int = 3, illegal_penalty: float = -0.1, render_mode: str | None = None
    ) -> None:
        self.possible_agents = ["player_0", "player_1"]
        super().__init__(render_mode=render_mode)
        if max_illegal < 1:
            raise ConfigError(f"max_illegal must be >= 1, got {max_illegal}")
        if illegal_penalty > 0:
            raise ConfigError(f"illegal_penalty must be <= 0, got {illegal_penalty}")
        self.max_illegal, self.illegal_penalty = int(max_illegal), float(illegal_penalty)
        self.board: tuple[str, ...] = ("",) * 9
        self.history: list[str] = []
        self.illegal = 0
        self.outcome: dict[str, str | None] = {}
        self.note: dict[str, str] = {}

    def mark(self, agent: str) -> str:
        """The agent's mark, ``"X"`` or ``"O"``."""
        return MARKS[self.possible_agents.index(agent)]

    def _other(self, agent: str) -> str:
        return self.possible_agents[1 - self.possible_agents.index(agent)]

    # --- game ------------------------------------------------------------------------------
    def _start(self, options: dict[str, Any] | None) -> str:
        self.board, self.history, self.illegal = ("",) * 9, [], 0
        self.outcome = {a: None for a in self.possible_agents}
        self.note = {a: "" for a in self.possible_agents}
        return self.possible_agents[0]

    def _move(self, agent: str, text: str) -> tuple[dict[str, float], bool, str]:
        other = self._other(agent)
        cell = parse_cell(text)
        self.note = {a: "" for a in self.possible_agents}
        if cell is None or self.board[cell]:
            self.illegal += 1
            shown = text if len(text) <= 20 else text[:17] + "..."
            why = f"'{shown}' is not an empty cell" if cell is None else f"{CELLS[cell]} is taken"
            if self.illegal >= self.max_illegal:
                self._finish(winner_agent=other)
                self.note[agent] = f"{why}; {self.illegal} illegal moves, you forfeit."
                self.note[other] = (
                    f"{self.mark(agent)} forfeits after {self.illegal} illegal moves."
                )
                return {agent: self.illegal_penalty - 1.0, other: 1.0}, True, other
            left = self.max_illegal - self.illegal
            self.note[agent] = f"Illegal: {why}. Try again ({left} left)."
            return {agent: self.illegal_penalty}, False, agent
        self.illegal = 0
        board = list(self.board)
        board[cell] = self.mark(agent)
        self.board = tuple(board)
        self.history.append(f"{self.mark(agent)} played {CELLS[cell]}.")
        if winner(self.board) is not None:
            self._finish(winner_agent=agent)
            return {agent: 1.0, other: -1.0}, True, other
        if all(self.board):
            self._finish(winner_agent=None)
            return {}, True, other
        return {}, False, other

    def _finish(self, winner_agent: str | None) -> None:
        for a in self.possible_agents:
            self.outcome[a] = (
                "draw" if winner_agent is None else "win" if a == winner_agent else "loss"
            )

    # --- views -----------------------------------------------------------------------------
    def _board_text(self) -> str:
        rows = []
        for name, r in (("top", 0), ("middle", 1), ("bottom", 2)):
            rows.append(f"{name} " + " ".join(self.board[3 * r + c] or "_" for c in range(3)))
        return "Board: " + ", ".join(rows) + "."

    def observe_text(self, agent: str) -> str:
        parts = [f"Tic-tac-toe, you are {self.mark(agent)}."]
        parts += self.history[-2:]
        if self.note.get(agent):
            parts.append(self.note[agent])
        parts.append(self._board_text())
        outcome = self.outcome.get(agent)
        if outcome is not None:
            parts.append({"win": "You won.", "loss": "You lost.", "draw": "Draw."}[outcome])
        elif self.agent_selection == agent:
            parts.append("Your move.")
        else:
            parts.append(f"{self.mark(self._other(agent))} to move.")
        return " ".join(parts)

    def admissible(self, agent: str) -> tuple[str, ...]:
        if self.outcome.get(agent) is not None or getattr(self, "agent_selection", None) != agent:
            return ()
        return tuple(CELLS[i] for i in range(9) if not self.board[i])

    def agent_info(self, agent: str) -> dict[str, Any]:
        outcome = self.outcome.get(agent)
        return {"success": outcome in ("win", "draw"), "outcome": outcome, "mark": self.mark(agent)}

    def expert_action(self, agent: str) -> str:
        """A minimax-optimal move (ties: center, corners, edges)."""
        return CELLS[best_cell(self.board, self.mark(agent))]
