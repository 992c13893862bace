"""``lmrl/Maze-v0``: walk to the goal of a small grid maze, described in words."""

from __future__ import annotations

import re
from collections import deque
from typing import Any, ClassVar

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

#: The default layout: ``#`` is a wall, ``.`` is open floor. Isolated pillars only
#: (no two walls touch, not even diagonally), so walking towards the goal and
#: stepping sideways round a pillar always gets there: the local text suffices.
DEFAULT_LAYOUT = """
#########
#.......#
#.#...#.#
#...#...#
#.#...#.#
#...#...#
#.#...#.#
#.......#
#########
"""

DIRECTIONS: tuple[str, ...] = ("north", "east", "south", "west")
_DELTAS: dict[str, tuple[int, int]] = {
    "north": (-1, 0),
    "east": (0, 1),
    "south": (1, 0),
    "west": (0, -1),
}
_ALIASES: dict[str, str] = {
    **{d: d for d in DIRECTIONS},
    "n": "north", "e": "east", "s": "south", "w": "west",
    "up": "north", "right": "east", "down": "south", "left": "west",
}  # fmt: skip
_WORD = re.compile(r"[a-z]+")

Cell = tuple[int, int]


def parse_layout(layout: str) -> list[str]:
    """Validates an ASCII maze layout and returns its rows.

    Args:
        layout: Rows of ``#`` (wall) and ``.`` (open), one per line; blank lines and
            surrounding spaces are ignored. Cells outside the grid count as walls.

    Returns:
        The rows, all of equal width.

    Raises:
        ConfigError: The layout is not rectangular, smaller than 5x5, has other
            characters, or its open cells are not all connected.
    """
    rows = [line.strip() for line in layout.strip().splitlines() if line.strip()]
    if len(rows) < 5 or any(len(r) < 5 for r in rows):
        raise ConfigError(
            f"maze layout must be at least 5x5, got {len(rows)} rows of widths {sorted({len(r) for r in rows})}"
        )
    if len({len(r) for r in rows}) != 1:
        raise ConfigError(
            f"maze layout rows must all have the same width, got widths {[len(r) for r in rows]}"
        )
    bad = sorted({ch for r in rows for ch in r} - set("#."))
    if bad:
        raise ConfigError(f"maze layout may contain only '#' (wall) and '.' (open), got {bad}")
    open_cells = [(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch == "."]
    if len(open_cells) < 2:
        raise ConfigError(f"maze layout needs at least 2 open cells, got {len(open_cells)}")
    reached = _bfs(rows, open_cells[0])
    if len(reached) != len(open_cells):
        lost = sorted(set(open_cells) - set(reached))[:3]
        raise ConfigError(
            f"maze layout's open cells must all be connected; cannot reach (row, col) {lost}"
        )
    return rows


def _is_open(rows: list[str], cell: Cell) -> bool:
    r, c = cell
    return 0 <= r < len(rows) and 0 <= c < len(rows[0]) and rows[r][c] == "."


def _bfs(rows: list[str], source: Cell) -> dict[Cell, int]:
    dist = {source: 0}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        for dr, dc in _DELTAS.values():
            nxt = (cell[0] + dr, cell[1] + dc)
            if nxt not in dist and _is_open(rows, nxt):
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def _steps(n: int, direction: str) -> str:
    return f"{n} step{'s' if n != 1 else ''} {direction}"


class MazeEnv(TextEnv):
    """Find the goal in a small grid maze from a description in words.

    ## Description
    The agent stands in a grid maze with walls (by default 7x7 open cells inside
    a border, with isolated pillars). Each episode draws a start and a goal
    cell at random, at least ``min_distance`` moves apart. The agent cannot see
    the map: it is told which of its four neighbours are open and where the
    goal lies relative to it, and moves one cell per step. The pillars never
    trap a walker that heads for the goal and sidesteps when blocked, so the
    task is solvable from the text alone. Over seeds 0-199, a uniformly random
    walker succeeds in 12% of episodes, the BFS expert in 100%.

    ## Action Space
    Text naming a direction: ``"north"``, ``"east"``, ``"south"`` or ``"west"``
    (also ``n``/``e``/``s``/``w`` and ``up``/``right``/``down``/``left``; the
    first direction word in the text counts). In choose mode the admissible
    actions are the open directions. A move into a wall costs the step and the
    agent stays put; text without a direction costs the step and is explained.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``, for example::

        You are in a maze. The goal is 2 steps north and 1 step east.
        North: wall. East: open. South: open. West: open.

    (on one line), with actions ``("east", "south", "west")``. After a step the
    first sentence says what happened (``You moved north.``, ``You hit a wall
    to the north.``, ``I could not read a direction in 'banana'. ...``).

    ## Rewards
    -0.01 per step; +1 (instead of the step cost) on the step that reaches the goal.

    ## Episode End
    Terminated when the agent reaches the goal (``info["success"] = True``).
    Truncated after ``max_steps`` steps.

    ## Arguments
    ```python
    gymnasium.make("lmrl/Maze-v0", layout=DEFAULT_LAYOUT, min_distance=3, max_steps=16)
    ```
    * ``layout``: ASCII rows of ``#`` and ``.``; at least 5x5, open cells connected.
    * ``min_distance``: least shortest-path distance between start and goal.
    * ``max_steps``: step limit.
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 16

    def __init__(
        self,
        layout: str = DEFAULT_LAYOUT,
        min_distance: int = 3,
        max_steps: int = 16,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.rows = parse_layout(layout)
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        if min_distance < 1:
            raise ConfigError(f"min_distance must be >= 1, got {min_distance}")
        self.max_steps = int(max_steps)
        self.min_distance = int(min_distance)
        self._cells = [
            (r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == "."
        ]
        self._dist = {cell: _bfs(self.rows, cell) for cell in self._cells}
        diameter = max(max(d.values()) for d in self._dist.values())
        if diameter < self.min_distance:
            raise ConfigError(
                f"min_distance ({min_distance}) must be <= the maze's longest shortest path ({diameter})"
            )
        self.pos: Cell = self._cells[0]
        self.goal: Cell = self._cells[-1]
        self.steps = 0

    # --- episode ---------------------------------------------------------------------
    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.goal = self._cells[int(self.np_random.integers(len(self._cells)))]
        far = [c for c in self._cells if self._dist[self.goal][c] >= self.min_distance]
        while not far:  # this goal has no far cell: draw again (some goal has, see __init__)
            self.goal = self._cells[int(self.np_random.integers(len(self._cells)))]
            far = [c for c in self._cells if self._dist[self.goal][c] >= self.min_distance]
        self.pos = far[int(self.np_random.integers(len(far)))]
        self.steps = 0
        return "You are in a maze. " + self._describe(), self.open_directions(), self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.steps += 1
        direction = parse_direction(action)
        if direction is None:
            shown = action if len(action) <= 20 else action[:17] + "..."
            event = f"I could not read a direction in '{shown}'. Say north, east, south or west."
        else:
            dr, dc = _DELTAS[direction]
            nxt = (self.pos[0] + dr, self.pos[1] + dc)
            if _is_open(self.rows, nxt):
                self.pos = nxt
                event = f"You moved {direction}."
            else:
                event = f"You hit a wall to the {direction}."
        if self.pos == self.goal:
            return (
                f"{event[:-1]} and reached the goal!",
                (),
                1.0,
                True,
                False,
                self._info(success=True),
            )
        truncated = self.steps >= self.max_steps
        return (
            f"{event} {self._describe()}",
            self.open_directions(),
            -0.01,
            False,
            truncated,
            self._info(),
        )

    # --- helpers ------------------------------------------------------------------------
    def open_directions(self) -> tuple[str, ...]:
        """The directions the agent can move in from where it stands."""
        return tuple(
            d
            for d in DIRECTIONS
            if _is_open(self.rows, (self.pos[0] + _DELTAS[d][0], self.pos[1] + _DELTAS[d][1]))
        )

    def _describe(self) -> str:
        dy, dx = self.pos[0] - self.goal[0], self.goal[1] - self.pos[1]  # + means north / east
        parts = []
        if dy:
            parts.append(_steps(abs(dy), "north" if dy > 0 else "south"))
        if dx:
            parts.append(_steps(abs(dx), "east" if dx > 0 else "west"))
        around = " ".join(
            f"{d.capitalize()}: {'open' if d in self.open_directions() else 'wall'}."
            for d in DIRECTIONS
        )
        return f"The goal is {' and '.join(parts)}. {around}"

    def _info(self, success: bool = False) -> dict[str, Any]:
        return {
            "success": success,
            "distance": self._dist[self.goal][self.pos],
            "steps": self.steps,
        }

    def expert_action(self) -> str:
        """A move along a shortest path to the goal (BFS distances; ties broken N, E, S, W)."""
        dist = self._dist[self.goal]
        for d in self.open_directions():
            nxt = (self.pos[0] + _DELTAS[d][0], self.pos[1] + _DELTAS[d][1])
            if dist[nxt] < dist[self.pos]:
                return d
        return self.open_directions()[0]  # at the goal: any move

    def random_action(self, rng) -> str:  # noqa: D102 - base docstring
        opts = self.open_directions()
        return opts[int(rng.integers(len(opts)))]

    def render_map(self) -> str:
        """The map with ``A`` for the agent and ``G`` for the goal (for debugging; not shown to the agent)."""
        grid = [list(r) for r in self.rows]
        grid[self.goal[0]][self.goal[1]] = "G"
        grid[self.pos[0]][self.pos[1]] = "A"
        return "\n".join("".join(r) for r in grid)


def parse_direction(text: str) -> str | None:
    """The first direction named in ``text`` (``"north"``, ...), or ``None``."""
    for word in _WORD.findall(text.lower()):
        if word in _ALIASES:
            return _ALIASES[word]
    return None
