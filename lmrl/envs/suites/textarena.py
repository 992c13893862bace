"""TextArena games as lmrl envs: two-player games (PettingZoo AEC) and one-player ones (Gymnasium).

TextArena (Guertler et al., 2025; MIT) is a collection of text games for
LLMs. Its API is its own (``reset(num_players, seed)``, ``get_observation()``,
``step(text)``, ``close()``); this module puts a game's ``-train`` variant
(its observation is the prompt, the game messages and, for board games, the
current board; actions are bracketed, ``[4]``) behind lmrl's contracts:
:class:`TextArenaEnv` for two-player games (``textarena/TicTacToe-v0``, ...;
they train through the same path as ``lmrl/TicTacToe-v0``) and
:class:`TextArenaPuzzleEnv` for one-player games (``textarena/FrozenLake-v0``,
...). Both share :class:`_Arena`, the TextArena game behind them. What lmrl adds
to each game (its admissible moves where the board does not list them, a
scripted expert, a random move for free-text games) is in :data:`GAMES`.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.envs.multiagent.base import TextAECEnv
from lmrl.envs.suites import quote, register_suite
from lmrl.envs.suites.textarena_games import GAMES, ArenaGame
from lmrl.errors import ConfigError

#: Lines that list the legal moves, in the games' own words (the last one in a view counts).
_MOVES = re.compile(
    r"(?:Available Moves|Available Actions|Valid moves|Your available actions are"
    r"|Your remaining hand):([^\n]*)",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"\[[^\[\]\n]*\]")
#: Characters TextArena prints that are outside lmrl's charset, and their ASCII stand-ins.
_ASCII = str.maketrans(
    {"\u2013": "-", "\u2014": "-", "\u2192": "->", "\u2264": "<=", "\u2265": ">="}
)


def available_moves(text: str) -> tuple[str, ...]:
    """The moves a TextArena view lists last (``Available Moves: '[0]', '[4]'``), or ``()``."""
    found = _MOVES.findall(text)
    return tuple(_BRACKETED.findall(found[-1])) if found else ()


def _printable(text: str) -> str:
    from lmrl.envs.base import CHARSET

    text = text.translate(_ASCII)
    return "".join(ch if ch in CHARSET and ch not in "\x0b\x0c\r" else "?" for ch in text)


def _class_name(game: str) -> str:
    return game.split("-")[0] + ("ArenaEnv" if GAMES[game].players == 2 else "PuzzleEnv")


#: lmrl id -> (entry point, kwargs); one class a game (multi-agent entry points take no kwargs).
ENV_IDS: dict[str, tuple[str, dict]] = {
    f"textarena/{game}": (f"lmrl.envs.suites.textarena:{_class_name(game)}", {}) for game in GAMES
}


class _Arena:
    """A TextArena game behind an lmrl env: its lifecycle, its randomness, its views' moves.

    TextArena seeds Python's global ``random`` at reset and draws from it during
    play (card games deal each round); each env keeps that generator's state of
    its own and swaps it in around every call, so envs played side by side, or
    copied mid-episode, stay deterministic.
    """

    game: str
    rules: ArenaGame
    players: ClassVar[int]

    def _arena_init(self, game: str, illegal_penalty: float) -> None:
        if game not in GAMES or GAMES[game].players != self.players:
            known = sorted(g for g, s in GAMES.items() if s.players == self.players)
            raise ConfigError(f"game must be one of {known}, got {game!r}")
        if illegal_penalty > 0:
            raise ConfigError(f"illegal_penalty must be <= 0, got {illegal_penalty}")
        self.game, self.rules, self.illegal_penalty = game, GAMES[game], float(illegal_penalty)
        self.arena: Any = None
        self.arena_seed = 0
        self.sent: list[str] = []
        self._random_state: Any = None

    @contextlib.contextmanager
    def _own_random(self) -> Iterator[None]:
        outside = random.getstate()
        if self._random_state is not None:
            random.setstate(self._random_state)
        try:
            yield
        finally:
            self._random_state = random.getstate()
            random.setstate(outside)

    def _arena_start(self, seed: int) -> None:
        import textarena

        self.arena_seed, self.sent, self._random_state = int(seed), [], None
        with self._own_random():
            self.arena = textarena.make(f"{self.game}-train")
            self.arena.reset(num_players=self.players, seed=self.arena_seed)

    def _arena_observation(self) -> tuple[int, str]:
        """The player to move and TextArena's view for them (handed out once), made printable."""
        with self._own_random():
            player, text = self.arena.get_observation()
        recap = self.rules.recap
        view = _printable(str(text)) + (f"\n{recap(self.core)}" if recap else "")
        return int(player), view

    def _arena_step(self, text: str) -> tuple[bool, bool]:
        """Plays ``text``; returns (game over, a forgiven illegal move)."""
        state = self.arena.state
        errors_before = state.error_count
        with self._own_random():
            done, _ = self.arena.step(text)
        self.sent.append(text)
        return bool(done), not done and state.error_count > errors_before

    def _arena_close(self) -> tuple[dict[int, float], dict[int, dict]]:
        with self._own_random():
            rewards, game_info = self.arena.close()
        return dict(rewards or {}), dict(game_info or {})

    @property
    def core(self) -> Any:
        """The TextArena game itself, without its wrappers."""
        import textarena

        core = self.arena
        while isinstance(core, textarena.Wrapper):
            core = core.env
        return core

    def _moves(self, player: int, view: str) -> tuple[str, ...]:
        if self.rules.free_text:
            return ()
        if self.rules.moves is not None:
            return self.rules.moves(self.core, player)
        return available_moves(view)

    def _admin_reason(self, player: int) -> str:
        for _, message, kind in reversed(self.arena.state.observations.get(player, [])):
            if "GAME_ADMIN" in str(kind):
                found = re.search(r"Reason: (.*?)(?: Please resubmit|$)", str(message))
                return _printable(found.group(1).strip() if found else str(message)).rstrip(".")
        return "an invalid move"

    def _expert(self, player: int) -> str:
        if self.rules.expert is None:
            raise NotImplementedError(f"textarena/{self.game} has no scripted expert")
        return self.rules.expert(self.core, player)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["arena"] = None  # TextArena's wrappers do not unpickle; replayed from the moves
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.__dict__.get("sent") is None or "arena_seed" not in self.__dict__:
            return
        saved, self._random_state = self._random_state, None
        self._arena_start(self.arena_seed)
        self.sent = list(state["sent"])
        with self._own_random():
            self.arena.get_observation()
            for text in self.sent:
                done, _ = self.arena.step(text)
                if done:
                    self.arena.close()
                    break
                self.arena.get_observation()
        self._random_state = saved


class TextArenaEnv(_Arena, TextAECEnv):
    """A TextArena two-player game (its ``-train`` variant) for two text agents, turn by turn.

    ## Description
    ``player_0`` is TextArena's Player 0. Each agent sees TextArena's own
    observation for it: the game prompt, the game messages and the current
    board. The player to move is TextArena's (Player 0 opens most games; in
    Kuhn Poker and the Game of Pure Strategy the opener alternates by round).
    Seeds are TextArena's: ``reset(seed=s)`` resets the game with seed ``s``
    (without a seed one is drawn from ``self.np_random``); the seed goes to
    TextArena's RNG, not to a finite pool of games, so evaluation seeds
    (``s >= HELD_OUT_SEED``) need no held-out split.

    ## Action Space
    Text, TextArena's move format: a bracketed move such as ``"[4]"`` (the
    ``-train`` variant brackets text that has none, so ``"4"`` works too). The
    admissible actions are the legal moves: those the board lists (TicTacToe,
    WildTicTacToe, KuhnPoker, GameOfPureStrategy) or those the adapter reads
    from the game state (ConnectFour and Nim, which list none; Othello, to
    offer ``[skip]`` when a player has no move and TextArena takes any text).
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

    Experts: minimax (TicTacToe, WildTicTacToe), optimal nim-sum play (Nim),
    win / block / do not give a win away (ConnectFour), the best square after
    one move by positional weights (Othello), by its own card (KuhnPoker), the
    lowest card worth the prize (GameOfPureStrategy). The random agent picks
    uniformly among the legal moves.

    ## Version History
    * v0: Initial version (textarena 0.7.4).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "textarena_v0",
        "is_parallelizable": False,
    }
    players: ClassVar[int] = 2
    game_id: ClassVar[str] = "TicTacToe-v0"
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
        game: str | None = None,
        illegal_penalty: float = -0.1,
        render_mode: str | None = None,
    ) -> None:
        self.possible_agents = ["player_0", "player_1"]
        TextAECEnv.__init__(self, render_mode=render_mode)
        self._arena_init(game or self.game_id, illegal_penalty)
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
        seed = getattr(self, "_requested_seed", None)
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        self._arena_start(seed)
        self.views = {a: "" for a in self.possible_agents}
        self.outcome = {a: None for a in self.possible_agents}
        self.reason = ""
        self._observe_current()
        return self.possible_agents[self.current]

    def _observe_current(self, note: str = "") -> None:
        """Reads TextArena's observation for the player to move (it hands each one out once)."""
        self.current, view = self._arena_observation()
        self.views[self.possible_agents[self.current]] = view + note

    def _move(self, agent: str, text: str) -> tuple[dict[str, float], bool, str]:
        player = self._player(agent)
        done, forgiven = self._arena_step(text)
        if done:
            rewards, game_info = self._arena_close()
            self.reason = _printable(str(game_info.get(player, {}).get("reason", "")))
            out: dict[str, float] = {}
            for a in self.possible_agents:
                r = float(rewards.get(self._player(a), 0.0))
                self.outcome[a] = "win" if r > 0 else "loss" if r < 0 else "draw"
                out[a] = r
            if game_info.get(player, {}).get("invalid_move", False):
                out[agent] += self.illegal_penalty
            for a in self.possible_agents:
                said = {"win": "won", "loss": "lost", "draw": "drew"}[str(self.outcome[a])]
                self.views[a] += f"\nGame over: {self.reason} You {said}."
            return out, True, agent
        if forgiven:  # same player again
            note = (
                f"\nIllegal: {quote(text)} was not accepted ({self._admin_reason(player)}). "
                "Try again; one more illegal move loses the game."
            )
            self._observe_current(note)
            return {agent: self.illegal_penalty}, False, self.possible_agents[self.current]
        self._observe_current()
        return {}, False, self.possible_agents[self.current]

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
        return self._moves(self._player(agent), self.views.get(agent, ""))

    def agent_info(self, agent: str) -> dict[str, Any]:
        outcome = self.outcome.get(agent)
        return {"success": outcome in ("win", "draw"), "outcome": outcome, "reason": self.reason}

    def expert_action(self, agent: str) -> str:
        """The game's scripted expert (see the class docstring)."""
        return self._expert(self._player(agent))


class TextArenaPuzzleEnv(_Arena, TextEnv):
    """A TextArena one-player game (its ``-train`` variant) as a Gymnasium text env.

    ## Description
    The agent sees TextArena's own observation: the game prompt, the game
    messages so far and, for board games, the current board (Guess The
    Number's view also recaps the guesses, which its ``-train`` view leaves
    out). Seeds are TextArena's: ``reset(seed=s)`` resets the game with seed
    ``s`` (without a seed one is drawn from ``self.np_random``), so evaluation
    seeds (``s >= HELD_OUT_SEED``) need no held-out split.

    ## Action Space
    Text, TextArena's move format: a bracketed move such as ``"[down]"`` (the
    ``-train`` variant brackets text that has none). FrozenLake and
    TowerOfHanoi offer their legal moves as admissible actions (read from the
    game state; choose mode); GuessTheNumber and Mastermind are free text
    (generate mode). Illegal text follows TextArena's rules: the first illegal
    move in a row is forgiven, the second ends the game. Each illegal move also
    costs ``illegal_penalty``, and the next observation quotes it with
    TextArena's reason.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``. For example (FrozenLake-v0)::

        Welcome to Frozen Lake! ...
        Current Board:
        +-----+-----+-----+-----+
        |  P  |     |     |     |
        ...
        Available Actions: [up], [down], [left], [right], [w], [a], [s], [d]

    ## Rewards
    TextArena's, when the game ends: 1 when solved, else its partial credit
    in [0, 1) (the share of the puzzle done: disks on the last tower, the way
    to the goal, the closeness of the last guess, pegs right);
    ``illegal_penalty`` (-0.1) for each illegal move.

    ## Episode End
    Terminated when TextArena says the game is over (solved, its turn limit,
    a second illegal move in a row, a hole in FrozenLake).
    ``info["success"]`` is True once solved; ``info["outcome"]`` is
    ``"solved"`` or ``"unsolved"`` at the end, ``info["reason"]`` TextArena's.

    ## Arguments
    ```python
    lmrl.envs.make("textarena/FrozenLake-v0", illegal_penalty=-0.1)
    ```
    * ``illegal_penalty``: reward for each illegal move (<= 0).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    Experts: a shortest path around the holes (FrozenLake), the shortest
    solution from the current towers (TowerOfHanoi), binary search
    (GuessTheNumber), the first code that agrees with all feedback
    (Mastermind). The random agent picks uniformly among the legal moves, or
    guesses a random number or code.

    ## Version History
    * v0: Initial version (textarena 0.7.4).
    """

    players: ClassVar[int] = 1
    game_id: ClassVar[str] = "FrozenLake-v0"
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 200

    @classmethod
    def agent_instructions(cls, **_: Any) -> str:
        """The chat system message: a one-player game, a bracketed move a turn."""
        spec = GAMES[cls.game_id]
        how = (
            f"write your move in the bracketed form the rules give, such as {spec.example}"
            if spec.free_text
            else f"choose your move from the legal moves, such as {spec.example}"
        )
        return (
            f"You are playing {spec.title}, a one-player TextArena game. Each turn you see the "
            f"rules, the game's messages so far and the current state, then {how}.\n\n"
            "Rewards: 1 when you solve it; if the game ends unsolved, a partial credit between "
            "0 and 1 for how far you got. An illegal move costs 0.1 and is explained; a second "
            "one in a row ends the game.\n\n"
            "Answer with the move only."
        )

    def __init__(self, illegal_penalty: float = -0.1, render_mode: str | None = None) -> None:
        TextEnv.__init__(self, render_mode=render_mode)
        self._arena_init(self.game_id, illegal_penalty)
        self._requested_seed: int | None = None
        self.view = ""
        self.outcome: str | None = None
        self.reason = ""

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        seed = self._requested_seed
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        self._arena_start(seed)
        self.outcome, self.reason = None, ""
        _, self.view = self._arena_observation()
        return self.view, self._moves(0, self.view), self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        done, forgiven = self._arena_step(action)
        if done:
            rewards, game_info = self._arena_close()
            score = float(rewards.get(0, 0.0))
            self.reason = _printable(str(game_info.get(0, {}).get("reason", "")))
            self.outcome = "solved" if score >= 1 else "unsolved"
            reward = score + (
                self.illegal_penalty if game_info.get(0, {}).get("invalid_move") else 0
            )
            self.view += f"\nGame over: {self.reason} Score: {score:.2f}."
            return self.view, (), reward, True, False, self._info()
        note = (
            f"\nIllegal: {quote(action)} was not accepted ({self._admin_reason(0)}). "
            "Try again; one more illegal move in a row ends the game."
            if forgiven
            else ""
        )
        _, view = self._arena_observation()  # (after the reason: it hands the messages out)
        self.view = view + note
        reward = self.illegal_penalty if forgiven else 0.0
        return self.view, self._moves(0, self.view), reward, False, False, self._info()

    def _info(self) -> dict[str, Any]:
        return {"success": self.outcome == "solved", "outcome": self.outcome, "reason": self.reason}

    def expert_action(self) -> str:
        """The game's scripted expert (see the class docstring)."""
        return self._expert(0)

    def random_action(self, rng: np.random.Generator) -> str:
        """A uniformly random legal move, or a random guess in free-text games."""
        if self.rules.random is not None:
            return self.rules.random(self.core, rng)
        return super().random_action(rng)


def register_envs() -> None:
    """Registers the ``textarena/*`` ids (the ``lmrl.envs`` entry point of the ``textarena`` extra).

    Two-player games are multi-agent (AEC) envs, one-player games Gymnasium
    envs; :func:`lmrl.envs.make` makes both.
    """
    register_suite(ENV_IDS, suite="TextArena", extra="textarena", modules=("textarena",))


def _game_class(game: str) -> type:
    """The class of one game's lmrl id (entry points take no game argument)."""
    spec = GAMES[game]
    base = TextArenaEnv if spec.players == 2 else TextArenaPuzzleEnv
    name, players = _class_name(game), "two players" if spec.players == 2 else "one player"
    attrs = {
        "__doc__": f"TextArena's {spec.title} (``{game}``), {players}.\n\n"
        + inspect.cleandoc(base.__doc__ or ""),
        "__module__": __name__,
        "__qualname__": name,
        "game_id": game,
        "default_action_mode": "generate" if spec.free_text else "choose",
        "max_episode_steps": spec.max_moves,
    }
    if spec.players == 2:

        def __init__(self, illegal_penalty: float = -0.1, render_mode: str | None = None) -> None:
            TextArenaEnv.__init__(
                self, game, illegal_penalty=illegal_penalty, render_mode=render_mode
            )

        attrs["__init__"] = __init__
    return type(name, (base,), attrs)


TicTacToeArenaEnv = _game_class("TicTacToe-v0")
ConnectFourArenaEnv = _game_class("ConnectFour-v0")
NimArenaEnv = _game_class("Nim-v0")
OthelloArenaEnv = _game_class("Othello-v0")
KuhnPokerArenaEnv = _game_class("KuhnPoker-v0")
WildTicTacToeArenaEnv = _game_class("WildTicTacToe-v0")
GameOfPureStrategyArenaEnv = _game_class("GameOfPureStrategy-v0")
FrozenLakePuzzleEnv = _game_class("FrozenLake-v0")
TowerOfHanoiPuzzleEnv = _game_class("TowerOfHanoi-v0")
GuessTheNumberPuzzleEnv = _game_class("GuessTheNumber-v0")
MastermindPuzzleEnv = _game_class("Mastermind-v0")
