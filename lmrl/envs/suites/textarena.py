"""TextArena two-player games as lmrl multi-agent (PettingZoo AEC) envs: ``textarena/TicTacToe-v0``.

TextArena (Guertler et al., 2025; MIT) is a collection of text games for
LLMs. Its API is its own (``reset(num_players, seed)``, ``get_observation()``,
``step(text)``, ``close()``); this module puts a game's ``-train`` variant
(its observation is the prompt, the game messages and the current board;
actions are bracketed, ``[4]``) behind lmrl's multi-agent contract, so it
trains through the same path as ``lmrl/TicTacToe-v0``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from lmrl.envs.multiagent.base import TextAECEnv
from lmrl.envs.suites import quote, register_suite
from lmrl.errors import ConfigError

_MOVES = re.compile(r"Available Moves:([^\n]*)")
_BRACKETED = re.compile(r"'(\[[^\]]*\])'")


def _tictactoe_expert(state: Any, player: int) -> str:
    """Minimax for TextArena's tic-tac-toe (player 0 is O and moves first)."""
    from lmrl.envs.multiagent.tictactoe import best_cell

    board = tuple(cell for row in state.game_state["board"] for cell in row)
    return f"[{best_cell(board, 'O' if player == 0 else 'X')}]"


#: Games registered as ``textarena/<game>``: TextArena id -> scripted expert (or ``None``).
GAMES: dict[str, Callable[[Any, int], str] | None] = {"TicTacToe-v0": _tictactoe_expert}
#: lmrl id -> (entry point, kwargs); multi-agent entry points take no kwargs, so one class a game.
ENV_IDS: dict[str, tuple[str, dict]] = {
    "textarena/TicTacToe-v0": ("lmrl.envs.suites.textarena:TicTacToeArenaEnv", {}),
}


def available_moves(text: str) -> tuple[str, ...]:
    """The moves a TextArena board lists (``Available Moves: '[0]', '[4]'``), or ``()``."""
    found = _MOVES.findall(text)
    return tuple(_BRACKETED.findall(found[-1])) if found else ()


def _printable(text: str) -> str:
    from lmrl.envs.base import CHARSET

    return "".join(ch if ch in CHARSET and ch not in "\x0b\x0c\r" else "?" for ch in text)


class TextArenaEnv(TextAECEnv):
    """A TextArena two-player game (its ``-train`` variant) for two text agents, turn by turn.

    ## Description
    ``player_0`` is TextArena's Player 0 and moves first. Each agent sees
    TextArena's own observation for it: the game prompt, the game messages
    and the current board. Seeds are TextArena's: ``reset(seed=s)`` resets the
    game with seed ``s`` (without a seed one is drawn from ``self.np_random``);
    the seed goes to TextArena's RNG, not to a finite pool of games, so
    evaluation seeds (``s >= HELD_OUT_SEED``) need no held-out split.
    For ``TicTacToe-v0`` Player 0 plays O, Player 1 plays X.

    ## Action Space
    Text, TextArena's move format: a bracketed move such as ``"[4]"`` (the
    ``-train`` variant brackets text that has none, so ``"4"`` works too). The
    admissible actions are the board's ``Available Moves`` when it lists them.
    Illegal text follows TextArena's rules: the first illegal move of a player
    is forgiven (it tries again), the second loses the game. Each illegal move
    also costs ``illegal_penalty``, and the agent's next observation quotes it
    with TextArena's reason.

    ## Observation Space
    Per agent ``{"text": str, "actions": tuple[str, ...]}``; ``actions`` is
    empty when it is not the agent's turn. For example (TicTacToe-v0)::

        You are Player 1 in Tic Tac Toe. ...
        Player 0 placed their symbol (O) in cell 4.

        Current Board:
         0 | 1 | 2
        ---+---+---
         3 | O | 5
        ...
        Available Moves: '[0]', '[1]', '[2]', '[3]', '[5]', '[6]', '[7]', '[8]'

    ## Rewards
    TextArena's, when the game ends: +1 win, -1 loss (an illegal move too
    many loses), 0 draw; ``illegal_penalty`` (-0.1) for each illegal move.

    ## Episode End
    Every agent is terminated when TextArena says the game is over.
    ``info["success"]`` is True for an agent that won or drew;
    ``info["outcome"]`` is ``"win"``, ``"loss"`` or ``"draw"`` and
    ``info["reason"]`` TextArena's reason.

    ## Arguments
    ```python
    lmrl.envs.multiagent.make_aec("textarena/TicTacToe-v0", illegal_penalty=-0.1)
    ```
    * ``game``: the TextArena game id (set by each lmrl id; ``-train`` is added).
    * ``illegal_penalty``: reward for each illegal move (<= 0).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the acting agent's view).

    The expert (TicTacToe-v0) is minimax; the random agent picks uniformly
    among the available moves.

    ## Version History
    * v0: Initial version (textarena 0.7.4).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "textarena_v0",
        "is_parallelizable": False,
    }
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 27

    @classmethod
    def agent_instructions(cls, **_: Any) -> str:
        """The chat system message: a two-player game, a move a turn (the game's prompt says which)."""
        return (
            "You are a player in a two-player TextArena game. Each turn you see the game's "
            "prompt, its messages and the board, then choose your move from the available "
            "moves.\n\n"
            "Rewards: +1 for a win, -1 for a loss, 0 for a draw, when the game ends; an illegal "
            "move costs 0.1, and a second one loses the game.\n\n"
            "Answer with the move only."
        )

    def __init__(
        self,
        game: str = "TicTacToe-v0",
        illegal_penalty: float = -0.1,
        render_mode: str | None = None,
    ) -> None:
        self.possible_agents = ["player_0", "player_1"]
        super().__init__(render_mode=render_mode)
        if game not in GAMES:
            raise ConfigError(f"game must be one of {sorted(GAMES)}, got {game!r}")
        if illegal_penalty > 0:
            raise ConfigError(f"illegal_penalty must be <= 0, got {illegal_penalty}")
        self.game, self.illegal_penalty = game, float(illegal_penalty)
        self.arena: Any = None
        self.arena_seed = 0
        self.sent: list[str] = []
        self.views: dict[str, str] = {}
        self.current = 0
        self.outcome: dict[str, str | None] = {}
        self.reason = ""

    def _player(self, agent: str) -> int:
        return self.possible_agents.index(agent)

    # --- game ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self._requested_seed = seed
        super().reset(seed=seed, options=options)

    def _start(self, options: dict[str, Any] | None) -> str:
        import textarena

        seed = getattr(self, "_requested_seed", None)
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        self.arena_seed, self.sent = int(seed), []
        self.arena = textarena.make(f"{self.game}-train")
        self.arena.reset(num_players=2, seed=self.arena_seed)
        self.views = {a: "" for a in self.possible_agents}
        self.outcome = {a: None for a in self.possible_agents}
        self.reason = ""
        self._observe_current()
        return self.possible_agents[self.current]

    def _observe_current(self, note: str = "") -> None:
        """Reads TextArena's observation for the player to move (it hands each one out once)."""
        player, text = self.arena.get_observation()
        self.current = int(player)
        self.views[self.possible_agents[self.current]] = _printable(str(text)) + note

    def _move(self, agent: str, text: str) -> tuple[dict[str, float], bool, str]:
        player = self._player(agent)
        state = self.arena.state
        errors_before = state.error_count
        done, _ = self.arena.step(text)
        self.sent.append(text)
        if done:
            rewards, game_info = self.arena.close()
            self.reason = str(game_info.get(player, {}).get("reason", ""))
            out: dict[str, float] = {}
            for a in self.possible_agents:
                r = float(rewards.get(self._player(a), 0.0))
                self.outcome[a] = "win" if r > 0 else "loss" if r < 0 else "draw"
                out[a] = r
            illegal = bool(game_info.get(player, {}).get("invalid_move", False))
            if illegal:
                out[agent] += self.illegal_penalty
            for a in self.possible_agents:
                said = {"win": "won", "loss": "lost", "draw": "drew"}[str(self.outcome[a])]
                self.views[a] += f"\nGame over: {self.reason} You {said}."
            return out, True, agent
        if state.error_count > errors_before:  # forgiven illegal move: same player again
            reason = self._admin_reason(player)
            note = (
                f"\nIllegal: {quote(text)} was not accepted ({reason}). "
                "Try again; one more illegal move loses the game."
            )
            self._observe_current(note)
            return {agent: self.illegal_penalty}, False, self.possible_agents[self.current]
        self._observe_current()
        return {}, False, self.possible_agents[self.current]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["arena"] = None  # TextArena's wrappers do not unpickle; replayed from the moves
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if getattr(self, "sent", None) is None or not hasattr(self, "arena_seed"):
            return
        import textarena

        self.arena = textarena.make(f"{self.game}-train")
        self.arena.reset(num_players=2, seed=self.arena_seed)
        self.arena.get_observation()
        for text in self.sent:
            done, _ = self.arena.step(text)
            if done:
                self.arena.close()
                break
            self.arena.get_observation()

    def _admin_reason(self, player: int) -> str:
        for _, message, kind in reversed(self.arena.state.observations.get(player, [])):
            if "GAME_ADMIN" in str(kind):
                found = re.search(r"Reason: (.*?)(?: Please resubmit|$)", str(message))
                return found.group(1).strip() if found else str(message)
        return "an invalid move"

    # --- views -----------------------------------------------------------------------------
    def observe_text(self, agent: str) -> str:
        if self.arena is None:
            return ""
        view = self.views.get(agent, "")
        if self.outcome.get(agent) is None and self.agent_selection != agent:
            view += f"\nWaiting for Player {1 - self._player(agent)} to move."
        return view

    def admissible(self, agent: str) -> tuple[str, ...]:
        if self.outcome.get(agent) is not None or getattr(self, "agent_selection", None) != agent:
            return ()
        return available_moves(self.views.get(agent, ""))

    def agent_info(self, agent: str) -> dict[str, Any]:
        outcome = self.outcome.get(agent)
        return {"success": outcome in ("win", "draw"), "outcome": outcome, "reason": self.reason}

    def expert_action(self, agent: str) -> str:
        """The game's scripted expert (TicTacToe-v0: minimax)."""
        expert = GAMES[self.game]
        if expert is None:
            raise NotImplementedError(f"textarena/{self.game} has no scripted expert")
        return expert(self.arena.state, self._player(agent))


def register_envs() -> None:
    """Registers the ``textarena/*`` ids (the ``lmrl.envs`` entry point of the ``textarena`` extra).

    They are multi-agent (AEC) envs: :func:`lmrl.envs.make` makes them.
    """
    register_suite(ENV_IDS, suite="TextArena", extra="textarena", modules=("textarena",))


class TicTacToeArenaEnv(TextArenaEnv):
    __doc__ = TextArenaEnv.__doc__  # the TicTacToe-v0 game the shared docstring describes

    def __init__(self, illegal_penalty: float = -0.1, render_mode: str | None = None) -> None:
        super().__init__("TicTacToe-v0", illegal_penalty=illegal_penalty, render_mode=render_mode)
