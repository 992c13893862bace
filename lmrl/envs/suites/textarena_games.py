"""What lmrl adds to each TextArena game: legal moves, scripted experts, random moves.

:mod:`lmrl.envs.suites.textarena` adapts TextArena's games to lmrl's env APIs; this module
holds the per-game rules it needs (:data:`GAMES`, one :class:`ArenaGame` a game). It never
imports TextArena itself: each function receives the game object.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, reduce
from operator import xor
from typing import Any

import numpy as np

# --- what lmrl adds to each game: moves, experts, random moves ------------------------------
# Each function takes the TextArena game itself (unwrapped: ``core.state.game_state`` is
# its state) and, for two-player games, the player (0 or 1).


def _tictactoe_expert(core: Any, player: int) -> str:
    """Minimax for TextArena's tic-tac-toe (player 0 is O and moves first)."""
    from lmrl.envs.multiagent.tictactoe import best_cell

    board = tuple(cell for row in core.state.game_state["board"] for cell in row)
    return f"[{best_cell(board, 'O' if player == 0 else 'X')}]"


def _four_in_a_row(board: list[list[str]], row: int, col: int) -> bool:
    disc, rows, cols = board[row][col], len(board), len(board[0])
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < rows and 0 <= c < cols and board[r][c] == disc:
                count, r, c = count + 1, r + sign * dr, c + sign * dc
        if count >= 4:
            return True
    return False


def _drop_wins(board: list[list[str]], col: int, disc: str) -> bool:
    """Whether dropping ``disc`` into ``col`` connects four (the board is left as it was)."""
    row = max(r for r in range(len(board)) if board[r][col] == ".")
    board[row][col] = disc
    try:
        return _four_in_a_row(board, row, col)
    finally:
        board[row][col] = "."


def _connect_four_moves(core: Any, player: int) -> tuple[str, ...]:
    top = core.state.game_state["board"][0]
    return tuple(f"[col {c}]" for c in range(len(top)) if top[c] == ".")


def _connect_four_expert(core: Any, player: int) -> str:
    """Wins if it can, else blocks a win, else avoids giving one away; centre columns first."""
    board = [list(row) for row in core.state.game_state["board"]]
    me, them = ("X", "O") if player == 0 else ("O", "X")
    middle = len(board[0]) // 2
    cols = sorted(
        (c for c in range(len(board[0])) if board[0][c] == "."), key=lambda c: abs(c - middle)
    )
    for disc in (me, them):
        for c in cols:
            if _drop_wins(board, c, disc):
                return f"[col {c}]"
    safe = [c for c in cols if not _gives_a_win(board, c, me, them)]
    return f"[col {(safe or cols)[0]}]"


def _gives_a_win(board: list[list[str]], col: int, me: str, them: str) -> bool:
    """Whether ``them`` can win at once in ``col`` after ``me`` drops there."""
    row = max(r for r in range(len(board)) if board[r][col] == ".")
    if row == 0:
        return False
    board[row][col] = me
    try:
        return _drop_wins(board, col, them)
    finally:
        board[row][col] = "."


def _nim_moves(core: Any, player: int) -> tuple[str, ...]:
    piles = core.state.game_state["piles"]
    return tuple(f"[{i} {q}]" for i, n in enumerate(piles) for q in range(1, n + 1))


def _nim_expert(core: Any, player: int) -> str:
    """Optimal play: leave a nim-sum of zero; when that is impossible, take one from the largest."""
    piles = core.state.game_state["piles"]
    total = reduce(xor, piles, 0)
    for i, n in enumerate(piles):
        if total and n ^ total < n:
            return f"[{i} {n - (n ^ total)}]"
    return f"[{max(range(len(piles)), key=piles.__getitem__)} 1]"


#: A classic positional weighting of Othello squares (corners good, squares next to them bad).
_OTHELLO_WEIGHTS = (
    (100, -20, 10, 5, 5, 10, -20, 100),
    (-20, -50, -2, -2, -2, -2, -50, -20),
    (10, -2, 1, 1, 1, 1, -2, 10),
    (5, -2, 1, 0, 0, 1, -2, 5),
    (5, -2, 1, 0, 0, 1, -2, 5),
    (10, -2, 1, 1, 1, 1, -2, 10),
    (-20, -50, -2, -2, -2, -2, -50, -20),
    (100, -20, 10, 5, 5, 10, -20, 100),
)


def _othello_moves(core: Any, player: int) -> tuple[str, ...]:
    """The legal moves as the board lists them; ``[skip]`` (any text does) when there is none."""
    moves = core._valid_moves("B" if player == 0 else "W")
    return tuple(f"[{r}, {c}]" for r, c in moves) or ("[skip]",)


def _othello_play(board: list[list[str]], r: int, c: int, me: str) -> list[list[str]] | None:
    """The board after ``me`` plays (r, c), or ``None`` if that flips nothing (illegal)."""
    if board[r][c]:
        return None
    them, size, after, flipped = ("W" if me == "B" else "B"), len(board), None, False
    for dr, dc in itertools.product((-1, 0, 1), repeat=2):
        line, rr, cc = [], r + dr, c + dc
        while (dr or dc) and 0 <= rr < size and 0 <= cc < size and board[rr][cc] == them:
            line.append((rr, cc))
            rr, cc = rr + dr, cc + dc
        if line and 0 <= rr < size and 0 <= cc < size and board[rr][cc] == me:
            after = after or [row[:] for row in board]
            for fr, fc in line:
                after[fr][fc] = me
            flipped = True
    if flipped:
        after[r][c] = me
    return after if flipped else None


def _othello_expert(core: Any, player: int) -> str:
    """Two plies: the move whose worst reply leaves the best position.

    A position is worth its positional weights (corners first) and, in the last
    14 empty squares, 20 a disc ahead.
    """
    me, them = ("B", "W") if player == 0 else ("W", "B")
    board, size = core.board, len(core.board)
    weights = _OTHELLO_WEIGHTS if size == 8 else [[1] * size] * size

    def score(b: list[list[str]]) -> int:
        cells = [
            (weights[i][j], (cell == me) - (cell == them))
            for i, row in enumerate(b)
            for j, cell in enumerate(row)
        ]
        value = sum(w * mine for w, mine in cells)
        if sum(not cell for row in b for cell in row) <= 14:
            value += 20 * sum(mine for _, mine in cells)
        return value

    def replies(b: list[list[str]], who: str) -> list[list[list[str]]]:
        cells = itertools.product(range(size), repeat=2)
        return [a for a in (_othello_play(b, r, c, who) for r, c in cells) if a is not None]

    def worst(b: list[list[str]]) -> int:
        return min((score(a) for a in replies(b, them)), default=score(b))

    moves = core._valid_moves(me)
    if not moves:
        return "[skip]"
    r, c = max(moves, key=lambda m: worst(_othello_play(board, m[0], m[1], me)))
    return f"[{r}, {c}]"


def _kuhn_poker_expert(core: Any, player: int) -> str:
    """The best response to a uniformly random opponent, by its own card only.

    It bets whenever it may (a random player folds half the time, so even a jack
    gains by betting) and, facing a bet, calls with a queen or a king and folds a jack.
    """
    state = core.state.game_state
    card, legal = state["player_cards"][player], state["current_legal_action_tree"]
    if "call" in legal:
        return "[call]" if card >= 1 else "[fold]"
    return "[bet]"


_TTT_LINES = (
    (0, 1, 2),
    (3, 4, 5),
    (6, 7, 8),
    (0, 3, 6),
    (1, 4, 7),
    (2, 5, 8),
    (0, 4, 8),
    (2, 4, 6),
)


def _wild_line(board: str, mark: str) -> bool:
    return any(board[a] == board[b] == board[c] == mark for a, b, c in _TTT_LINES)


@cache
def _wild_value(board: str) -> int:
    """Wild tic-tac-toe's value for the player to move (1 win, 0 draw, -1 loss)."""
    best = -1 if " " in board else 0
    for i, mark in itertools.product(range(9), "XO"):
        if board[i] == " ":
            after = board[:i] + mark + board[i + 1 :]
            best = max(best, 1 if _wild_line(after, mark) else -_wild_value(after))
            if best == 1:
                return 1
    return best


def _wild_tictactoe_expert(core: Any, player: int) -> str:
    """Minimax (either mark completes a line for the player who places it)."""
    board = "".join(cell or " " for row in core.state.game_state["board"] for cell in row)

    def value(move: tuple[int, str]) -> int:
        i, mark = move
        after = board[:i] + mark + board[i + 1 :]
        return 1 if _wild_line(after, mark) else -_wild_value(after)

    moves = [(i, m) for i in (4, 0, 2, 6, 8, 1, 3, 5, 7) for m in "XO" if board[i] == " "]
    i, mark = max(moves, key=value)
    return f"[{mark} {i}]"


def _pure_strategy_expert(core: Any, player: int) -> str:
    """Bids the lowest card worth at least the prize (its value), else the lowest card."""
    state = core.state.game_state
    hand = sorted(state["player_hands"][player])
    card = min((c for c in hand if c >= state["current_prize"]), default=hand[0])
    return f"[{core._val_to_face(card)}]"


def _guess_the_number_random(core: Any, rng: np.random.Generator) -> str:
    left = [n for n in range(core.min_number, core.max_number + 1) if n not in core.guessed_numbers]
    return f"[{left[int(rng.integers(len(left)))] if left else core.min_number}]"


def _guess_the_number_expert(core: Any, player: int) -> str:
    """Binary search on the hints so far."""
    low, high = core.min_number, core.max_number
    for guess, hint in core.state.game_state["guess_history"]:
        low, high = (max(low, guess + 1), high) if hint == "higher" else (low, min(high, guess - 1))
    return f"[{(low + high) // 2}]"


def _guess_the_number_recap(core: Any) -> str:
    """The -train view drops the agent's own guesses; this puts them (and the hints) back."""
    history = core.state.game_state["guess_history"]
    return "Your guesses so far: " + (
        ", ".join(f"{g} (the target is {hint})" for g, hint in history) if history else "none"
    )


def _mastermind_codes(core: Any) -> Iterator[tuple[int, ...]]:
    state = core.state.game_state
    digits = range(1, state["num_numbers"] + 1)
    length = state["code_length"]
    if state["duplicate_numbers"]:
        return itertools.product(digits, repeat=length)
    return itertools.permutations(digits, length)


def _pegs(guess: tuple[int, ...], code: tuple[int, ...]) -> tuple[int, int]:
    black = sum(g == c for g, c in zip(guess, code, strict=True))
    common = sum(min(guess.count(d), code.count(d)) for d in set(guess))
    return black, common - black


def _mastermind_expert(core: Any, player: int) -> str:
    """The first code (in order) that agrees with every feedback so far."""
    history = core.state.game_state["history"]
    for code in _mastermind_codes(core):
        if all(_pegs(tuple(h["guess"]), code) == (h["black"], h["white"]) for h in history):
            return f"[{' '.join(map(str, code))}]"
    return "[" + " ".join(map(str, range(1, core.state.game_state["code_length"] + 1))) + "]"


def _mastermind_random(core: Any, rng: np.random.Generator) -> str:
    state = core.state.game_state
    code = rng.choice(
        np.arange(1, state["num_numbers"] + 1),
        size=state["code_length"],
        replace=bool(state["duplicate_numbers"]),
    )
    return f"[{' '.join(str(int(d)) for d in code)}]"


def _hanoi_moves(core: Any, player: int) -> tuple[str, ...]:
    towers = core.state.game_state["towers"]
    return tuple(
        f"[{s} {t}]"
        for s, t in itertools.permutations("ABC", 2)
        if towers[s] and (not towers[t] or towers[t][-1] > towers[s][-1])
    )


def _hanoi_expert(core: Any, player: int) -> str:
    """The next move of the shortest solution from the current towers."""
    towers = core.state.game_state["towers"]
    where = {disk: peg for peg, disks in towers.items() for disk in disks}

    def first(n: int, target: str) -> tuple[str, str] | None:  # gathers disks 1..n on target
        if n == 0:
            return None
        if where[n] == target:
            return first(n - 1, target)
        spare = ({"A", "B", "C"} - {where[n], target}).pop()
        return first(n - 1, spare) or (where[n], target)

    move = first(len(where), "C")
    return f"[{move[0]} {move[1]}]" if move else "[A C]"


_STEPS = {"[up]": (-1, 0), "[down]": (1, 0), "[left]": (0, -1), "[right]": (0, 1)}


def _frozen_lake_moves(core: Any, player: int) -> tuple[str, ...]:
    """The moves that stay on the grid (TextArena counts a step into the wall as illegal)."""
    (r, c), size = core.state.game_state["player_pos"], core.size
    return tuple(m for m, (dr, dc) in _STEPS.items() if 0 <= r + dr < size and 0 <= c + dc < size)


def _frozen_lake_expert(core: Any, player: int) -> str:
    """The first step of a shortest path to the goal around the holes."""
    state = core.state.game_state
    grid, start, goal = state["grid"], tuple(state["player_pos"]), tuple(state["goal_pos"])
    first_step: dict[tuple[int, int], str | None] = {start: None}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return first_step[goal] or "[down]"
        for move, (dr, dc) in _STEPS.items():
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < core.size and 0 <= nxt[1] < core.size and nxt not in first_step:
                if grid[nxt[0]][nxt[1]] != "H":
                    first_step[nxt] = first_step[(r, c)] or move
                    queue.append(nxt)
    return _frozen_lake_moves(core, player)[0]


@dataclass(frozen=True)
class ArenaGame:
    """What lmrl adds to one TextArena game.

    Attributes:
        title: The game's name, for the chat system message.
        players: 2 (an AEC env) or 1 (a Gymnasium env).
        max_moves: A bound on an episode's steps (TextArena's own limit, illegal tries included).
        example: A move in the game's format, for the chat system message.
        expert: ``(game, player) -> move``, or ``None`` where there is none.
        moves: ``(game, player) -> legal moves`` where the view does not list them (or lists
            moves that are illegal); ``None``: the moves the view lists.
        random: ``(game, rng) -> move`` for free-text games (no admissible list).
        recap: ``game -> text`` added to the view (what the ``-train`` view leaves out).
    """

    title: str
    players: int
    max_moves: int
    example: str
    expert: Callable[[Any, int], str] | None = None
    moves: Callable[[Any, int], tuple[str, ...]] | None = None
    random: Callable[[Any, np.random.Generator], str] | None = None
    recap: Callable[[Any], str] | None = None

    @property
    def free_text(self) -> bool:
        """Whether moves are free text (generate mode) rather than chosen from a list."""
        return self.random is not None


#: Games registered as ``textarena/<game>``: TextArena id (without ``-train``) -> what lmrl adds.
GAMES: dict[str, ArenaGame] = {
    # two players (AEC)
    "TicTacToe-v0": ArenaGame("Tic Tac Toe", 2, 27, "[4]", _tictactoe_expert),
    "ConnectFour-v0": ArenaGame(
        "Connect Four", 2, 84, "[col 3]", _connect_four_expert, _connect_four_moves
    ),
    "Nim-v0": ArenaGame("Nim", 2, 24, "[0 3]", _nim_expert, _nim_moves),
    "Othello-v0": ArenaGame("Othello", 2, 130, "[2, 3]", _othello_expert, _othello_moves),
    "KuhnPoker-v0": ArenaGame("Kuhn Poker", 2, 18, "[bet]", _kuhn_poker_expert),
    "WildTicTacToe-v0": ArenaGame("Wild Tic Tac Toe", 2, 18, "[X 4]", _wild_tictactoe_expert),
    "GameOfPureStrategy-v0": ArenaGame(
        "Game of Pure Strategy", 2, 52, "[Q]", _pure_strategy_expert
    ),
    # one player (Gymnasium)
    "FrozenLake-v0": ArenaGame(
        "Frozen Lake", 1, 200, "[down]", _frozen_lake_expert, _frozen_lake_moves
    ),
    "TowerOfHanoi-v0": ArenaGame("Tower of Hanoi", 1, 30, "[A C]", _hanoi_expert, _hanoi_moves),
    "GuessTheNumber-v0": ArenaGame(
        "Guess The Number",
        1,
        20,
        "[10]",
        _guess_the_number_expert,
        random=_guess_the_number_random,
        recap=_guess_the_number_recap,
    ),
    "Mastermind-v0": ArenaGame(
        "Mastermind", 1, 40, "[1 2 3 4]", _mastermind_expert, random=_mastermind_random
    ),
}
