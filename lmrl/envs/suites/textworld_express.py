"""TextWorld-Express games as lmrl text envs: ``twx/CookingWorld-v0``, ``twx/Coin-v0``, ...

TextWorld-Express (Jansen & Côté, 2022; Apache-2.0) simulates eight text games
in Java, reached through py4j. One JVM is started per process, the first time
an env is reset, and shared by all envs of the process (starting one takes
about 1.5 s; each env gets its own simulator object in it).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, ClassVar

from lmrl.envs.base import HELD_OUT_SEED, TextEnv
from lmrl.envs.suites import match_admissible, quote, register_suite
from lmrl.errors import ConfigError

#: Id name -> TextWorld-Express game name.
GAMES: dict[str, str] = {
    "CookingWorld": "cookingworld",
    "TWC": "twc",
    "Coin": "coin",
    "MapReader": "mapreader",
    "Arithmetic": "arithmetic",
    "Sorting": "sorting",
    "SimonSays": "simonsays",
    "PeckingOrder": "peckingorder",
}
#: game -> (name, task) for the agent's chat system message (``agent_instructions``); the
#: observation starts with the game's own task description as well.
AGENT_TASKS: dict[str, tuple[str, str]] = {
    "cookingworld": ("CookingWorld", "find the recipe in the cookbook, gather and prepare its "
                     "ingredients as it says, then eat the meal"),
    "twc": ("TextWorld Commonsense", "pick up the objects that are out of place and put each one "
            "where it usually belongs"),
    "coin": ("Coin", "search the rooms for the coin and take it"),
    "mapreader": ("MapReader", "use the map to find the coin, take it and put it into the box"),
    "arithmetic": ("Arithmetic", "solve the math problem, then put the object whose quantity is "
                   "the answer into the box"),
    "sorting": ("Sorting", "put the objects into the box one at a time, from the smallest "
                "quantity to the largest"),
    "simonsays": ("Simon Says", "do exactly what Simon says, one order at a time"),
    "peckingorder": ("PeckingOrder", "read the instructions book and carry out its steps in order"),
}  # fmt: skip

#: First seed of each fold; every fold has :data:`SEEDS_PER_FOLD` games.
FOLDS: dict[str, int] = {"train": 0, "dev": 10_000, "test": 20_000}
SEEDS_PER_FOLD = 1000
_UNKNOWN = "Unknown action"  # how the simulator answers text it cannot parse
_RECIPE = "Directions:"  # in CookingWorld's answer to `read cookbook` (and `examine cookbook`)
#: Default step limit per game: above the longest gold path over train seeds 0-199
#: (CookingWorld's is 114 steps at the default parameters, the others' at most 34).
MAX_STEPS: dict[str, int] = {game: 150 if game == "cookingworld" else 50 for game in GAMES.values()}
ENV_IDS: dict[str, tuple[str, dict]] = {
    f"twx/{name}-v0": (
        "lmrl.envs.suites.textworld_express:TextWorldExpressEnv",
        {"game": game, "max_steps": MAX_STEPS[game]},
    )
    for name, game in GAMES.items()
}

_jvm_lock = threading.Lock()
_jvm: dict[str, Any] = {}  # {"pid": ..., "gateway": ...}: one JVM per process


def _new_simulator() -> Any:
    """A fresh TextWorld-Express simulator object in this process's JVM (started on first use)."""
    with _jvm_lock:
        if _jvm.get("pid") != os.getpid():  # none yet, or inherited through fork
            from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
            from textworld_express.constants import BASEPATH, JAR_PATH

            port, proc = launch_gateway(
                classpath=JAR_PATH, die_on_exit=True, cwd=BASEPATH, return_proc=True
            )
            gateway = JavaGateway(
                gateway_parameters=GatewayParameters(auto_field=True, port=port),
                java_process=proc,
            )
            _jvm.update(pid=os.getpid(), gateway=gateway)
        return _jvm["gateway"].jvm.textworldexpress.runtime.PythonInterface()


def game_params_text(params: str | dict[str, Any] | None) -> str:
    """TextWorld-Express's ``"key=value,key=value"`` form of game parameters."""
    if params is None:
        return ""
    if isinstance(params, dict):
        return ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items())
    return str(params).replace(" ", "")


class TextWorldExpressEnv(TextEnv):
    """A TextWorld-Express game, with the simulator's valid actions as admissible actions.

    ## Description
    One of the eight TextWorld-Express games (``game``): ``cookingworld``
    (find the ingredients of a recipe, prepare and eat the meal), ``twc``
    (put objects where they belong), ``coin`` (find the coin and take it),
    ``mapreader`` (carry a coin to a box, with a map), ``arithmetic``,
    ``sorting``, ``simonsays`` and ``peckingorder``. The game is the one
    TextWorld-Express generates for the seed, with its own game parameters
    (``game_params``) and folds (train, dev, test: 1000 games each).

    ``reset(seed=s)`` plays game ``s % 1000`` of the fold (for the train fold,
    TextWorld-Express seed ``s`` itself); ``options={"game_seed": n}`` picks a
    TextWorld-Express seed directly; without a seed the game is drawn from
    ``self.np_random``. Evaluation seeds (``s >= HELD_OUT_SEED``, 1,000,000;
    see :data:`lmrl.envs.base.HELD_OUT_SEED`) of the train fold play the test
    fold instead: game ``(s - 1_000_000) % 1000`` of it, TextWorld-Express seed
    ``20_000 + (s - 1_000_000) % 1000``, so training and evaluation never share
    a game. ``info["fold"]`` names the fold played, ``info["game_seed"]`` the seed.

    ## Action Space
    Text; the admissible actions are TextWorld-Express's ``validActions``
    (``"move east"``, ``"take coin"``, ``"open fridge"``, ...; case and spacing
    are ignored). Other text goes to the simulator's parser, which accepts a
    few more commands (e.g. opening what is already open, as the gold path
    sometimes does); text it cannot parse ("Unknown action") changes nothing,
    costs the step and ``invalid_action_penalty``, and the next observation
    says so.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``: the task description, the
    simulator's observation, then (with ``show_look``) the room as ``look
    around`` describes it and the inventory, so each text shows the whole
    state, as TextWorld-Express's own baselines see it. For example::

        You are hungry! Let's cook a delicious meal. Check the cookbook in the kitchen ...
        You take the cookbook.
        You are in the kitchen. In one part of the room you see a stove. ...
        To the South you see the backyard. To the East you see the pantry.
        Inventory (maximum capacity is 2 items):
          a cookbook

    ## Rewards
    TextWorld-Express's own: the change of the game's normalised score (0 to
    1) at each step; ``invalid_action_penalty`` (-0.1) for text that is not an
    admissible action.

    ## Episode End
    Terminated when the task succeeds (``info["success"] = True``) or fails
    (``info["failure"] = True``, e.g. eating before cooking). Truncated after
    ``max_steps`` steps, invalid ones included.

    ## Arguments
    ```python
    lmrl.envs.make("twx/Coin-v0", game_params="numLocations=3,includeDoors=0",
                   game_fold="train", max_steps=50, invalid_action_penalty=-0.1, show_look=True,
                   show_recipe=False)
    ```
    * ``game``: the TextWorld-Express game (set by each id).
    * ``game_params``: the game's generation parameters, ``"key=value,..."`` or a
      dict, e.g. ``numLocations``, ``includeDoors``, ``numIngredients``,
      ``numDistractorItems`` (TextWorld-Express's defaults when empty; an unknown
      key or value raises :class:`~lmrl.errors.ConfigError` at the first reset).
    * ``game_fold``: ``"train"``, ``"dev"`` or ``"test"`` (with ``"train"``, evaluation
      seeds play the test fold; the dev and test folds keep their own games for every seed).
    * ``max_steps``: step limit (registered: 150 for CookingWorld, whose gold paths
      reach 114 steps, 50 for the others).
    * ``invalid_action_penalty``: reward for a non-admissible action (<= 0).
    * ``show_look``: add the room description and the inventory after each observation.
    * ``show_recipe``: CookingWorld: once the agent has read the cookbook, every later
      observation ends with the recipe (``The recipe you read:`` and its ingredients and
      directions). The game shows it once, in answer to ``read cookbook``; an agent that sees
      one observation at a time (single-turn prompts) has forgotten it by the cooking step.
      Off by default: the game as TextWorld-Express plays it.
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    The expert replays TextWorld-Express's gold action sequence; it is an expert
    from the start of an episode only (after the agent leaves the gold path it
    plays the first admissible action). The random agent picks uniformly among
    the admissible actions.

    ## Version History
    * v0: Initial version (textworld-express 1.1.0).
    """

    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 50
    held_out_split: ClassVar[bool] = True

    @classmethod
    def agent_instructions(
        cls, game: str = "coin", max_steps: int = 50, show_recipe: bool = False, **_: Any
    ) -> str:
        """The chat system message: the game and how a turn goes, not the adapter's seeds and folds.

        Example:
            >>> print(TextWorldExpressEnv.agent_instructions(game="simonsays").splitlines()[0])
            You are playing Simon Says, a TextWorld-Express text game: do exactly what Simon says, one order at a time.
        """
        name, task = AGENT_TASKS.get(game, (game, "carry out the task the game describes"))
        recipe = " (and the recipe, once you have read it)" if show_recipe else ""
        return (
            f"You are playing {name}, a TextWorld-Express text game: {task}.\n\n"
            "Each turn you read the task, what just happened, the room you are in and your "
            f"inventory{recipe}, then choose one of the listed actions.\n\n"
            "Rewards: the game's score (0 to 1) rises as you complete the task. The game ends "
            f"when the task is done or failed, or after {max_steps} steps.\n\n"
            "Answer with the action only."
        )

    def __init__(
        self,
        game: str = "coin",
        game_params: str | dict[str, Any] | None = None,
        game_fold: str = "train",
        max_steps: int = 50,
        invalid_action_penalty: float = -0.1,
        show_look: bool = True,
        show_recipe: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        self.show_look, self.show_recipe = bool(show_look), bool(show_recipe)
        if game not in GAMES.values():
            raise ConfigError(f"game must be one of {sorted(GAMES.values())}, got {game!r}")
        if game_fold not in FOLDS:
            raise ConfigError(f"game_fold must be one of {list(FOLDS)}, got {game_fold!r}")
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        if invalid_action_penalty > 0:
            raise ConfigError(f"invalid_action_penalty must be <= 0, got {invalid_action_penalty}")
        self.game, self.game_fold = game, game_fold
        self.game_params = game_params_text(game_params)
        self.max_steps, self.invalid_action_penalty = int(max_steps), float(invalid_action_penalty)
        self._sim: Any = None
        self._loaded = False
        self._requested_seed: int | None = None
        self.game_seed: int | None = None
        self.fold = game_fold  # the fold of this episode's game (test for evaluation seeds)
        self.history: list[str] = []  # actions sent to the simulator this episode
        self.steps = 0
        self._infos: dict[str, Any] = {}
        self._gold: list[str] = []
        self._gold_pos = 0
        self._on_gold_path = True
        self._recipe = ""  # the cookbook's recipe once read, from its ingredients on (show_recipe)

    # --- the simulator ----------------------------------------------------------------------
    def _simulator(self) -> Any:
        """The simulator, started and loaded on first use (and rebuilt after unpickling)."""
        if self._sim is None:
            self._sim = _new_simulator()
            self._loaded = False
        if not self._loaded:
            msg = self._sim.load(self.game, self.game_params)
            if msg:
                raise ConfigError(
                    f"TextWorld-Express rejected game_params={self.game_params!r} for {self.game}: "
                    f"{str(msg).strip()}"
                )
            self._loaded = True
            if self.game_seed is not None:  # unpickled mid-episode: replay to the same state
                self._sim.generateNewGameJSON(self.game_seed, self.fold, True)
                for action in self.history:
                    self._sim.stepJSON(action)
        return self._sim

    def _parse(self, response: str) -> dict[str, Any]:
        infos = json.loads(response)
        infos["validActions"] = tuple(str(a) for a in infos.get("validActions", ()))
        return infos

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.fold = self.game_fold
        if options and "game_seed" in options:
            self.game_seed = int(options["game_seed"])
        elif self._requested_seed is not None:
            seed = self._requested_seed
            if seed >= HELD_OUT_SEED and self.game_fold == "train":  # evaluation: unseen games
                self.fold, seed = "test", seed - HELD_OUT_SEED
            self.game_seed = FOLDS[self.fold] + seed % SEEDS_PER_FOLD
        else:
            self.game_seed = FOLDS[self.fold] + int(self.np_random.integers(SEEDS_PER_FOLD))
        self.history, self.steps, self._recipe = [], 0, ""
        sim = self._simulator()
        self._infos = self._parse(sim.generateNewGameJSON(self.game_seed, self.fold, True))
        self._infos["taskDescription"] = str(sim.getTaskDescription())
        self._gold = [str(a) for a in sim.getGoldActionSequence()]
        self._on_gold_path, self._gold_pos = True, 0
        text = self._text(self._infos["observation"])
        return text, self._infos["validActions"], self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.steps += 1
        truncated = self.steps >= self.max_steps
        task = self._infos["taskDescription"].strip()
        valid = self._infos["validActions"]
        chosen = match_admissible(action, valid)
        # Text outside the list still goes to the simulator's parser, which understands some
        # (the gold path has a few, such as opening what is open); what it cannot parse is invalid.
        sent = chosen if chosen is not None else action
        infos = None
        if sent:
            infos = self._parse(self._simulator().stepJSON(sent))
            self.history.append(sent)
        if infos is None or (chosen is None and _UNKNOWN in infos["observation"]):
            note = (
                f"{quote(action)} is not an admissible action here; nothing happened. "
                f"Choose one of the {len(valid)} admissible actions, "
                f"for example '{(valid or ('look around',))[0]}'."
            )
            text = self._text(note)
            reward = self.invalid_action_penalty
            return text, valid, reward, False, truncated, self._info(invalid=True)
        if self._on_gold_path:
            if self._gold_pos < len(self._gold) and self._gold[self._gold_pos] == sent:
                self._gold_pos += 1
            else:
                self._on_gold_path = False
        before = float(self._infos["score"])
        self._infos = {**infos, "taskDescription": task}
        reward = float(self._infos["score"]) - before
        if self.show_recipe and _RECIPE in self._infos["observation"]:
            read = self._infos["observation"].strip()
            self._recipe = read[read.find("Ingredients:") :] if "Ingredients:" in read else read
        success, failure = bool(self._infos["tasksuccess"]), bool(self._infos["taskfailure"])
        text = self._text(self._infos["observation"])
        terminated = success or failure
        return text, self._infos["validActions"], reward, terminated, truncated, self._info()

    def _text(self, event: str) -> str:
        """Task, what just happened, then the room and the inventory (as TWX's baselines see it)."""
        parts = [self._infos["taskDescription"].strip(), event.strip()]
        look = str(self._infos.get("look", "")).strip()
        if self.show_look and look and look != event.strip():
            parts.append(look)
        if self.show_look and self._infos.get("inventory"):
            parts.append(str(self._infos["inventory"]).strip())
        if self._recipe and _RECIPE not in event:  # not when the event is the reading itself
            parts.append("The recipe you read:\n" + self._recipe)
        return "\n".join(parts)

    def _info(self, invalid: bool = False) -> dict[str, Any]:
        return {
            "success": bool(self._infos.get("tasksuccess", False)),
            "failure": bool(self._infos.get("taskfailure", False)),
            "score": float(self._infos.get("score", 0.0)),
            "game_seed": self.game_seed,
            "fold": self.fold,
            "steps": self.steps,
            "invalid_action": invalid,
        }

    def expert_action(self) -> str:
        """The next admissible action of TextWorld-Express's gold path (from the episode's start)."""
        valid = self._infos["validActions"]
        # The gold path holds a few no-ops the simulator rejects now (opening what is open): skip.
        while (
            self._gold_pos < len(self._gold)
            and match_admissible(self._gold[self._gold_pos], valid) is None
        ):
            self._gold_pos += 1
        if self._on_gold_path and self._gold_pos < len(self._gold):
            return self._gold[self._gold_pos]
        return (self._infos["validActions"] or ("look around",))[0]

    def close(self) -> None:
        """Drops this env's simulator object (the process's JVM stays up for other envs)."""
        self._sim, self._loaded = None, False
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sim"], state["_loaded"] = None, False  # rebuilt and replayed on first use
        return state


def register_envs() -> None:
    """Registers the ``twx/*`` ids (the ``lmrl.envs`` entry point of the ``twx`` extra)."""
    register_suite(
        ENV_IDS,
        suite="TextWorld-Express",
        extra="twx",
        modules=("textworld_express", "py4j"),
        also_missing=_java_problem(),
    )


def _java_problem() -> str | None:
    from lmrl.envs.suites import java_missing

    if java_missing():
        return "Java 17+ on PATH (TextWorld-Express runs on the JVM): install a JRE, e.g. openjdk-17-jre-headless"
    return None
