"""``lmrl/TwentyQuestions-v0``: find a hidden object by yes/no questions to a rule-based oracle."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

#: The yes/no questions: key -> (what it asks, free-text keywords that pick it). The
#: admissible action that asks one is the key and a question mark (``"flies?"``); the
#: observation's summary lists the keys answered yes and no.
QUESTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "animal": ("Is it an animal?", ("animal",)),
    "mammal": ("Is it a mammal?", ("mammal",)),
    "vehicle": ("Is it a vehicle?", ("vehicle",)),
    "food": ("Can you eat it?", ("eat", "edible", "food")),
    "plant": ("Does it grow on a plant?", ("plant", "grow", "grows")),
    "fruit": ("Is it a fruit?", ("fruit",)),
    "sweet": ("Is it sweet?", ("sweet",)),
    "flies": ("Can it fly?", ("fly", "flies", "flying")),
    "water": ("Is it found in water?", ("water", "swim", "sea")),
    "big": ("Is it bigger than a person?", ("bigger", "big", "large")),
    "legs": ("Does it have legs?", ("legs", "leg")),
    "wheels": ("Does it have wheels?", ("wheels", "wheel")),
    "metal": ("Is it made of metal?", ("metal",)),
    "electric": ("Does it use electricity?", ("electricity", "electric", "power")),
    "small": ("Does it fit in a pocket?", ("pocket", "small", "tiny")),
    "pet": ("Is it kept as a pet?", ("pet",)),
    "cooking": ("Is it used for cooking?", ("kitchen", "cooking", "cook")),
}

#: The objects and the attributes that are true of each (all others are false).
OBJECTS: dict[str, frozenset[str]] = {
    name: frozenset(attrs.split())
    for name, attrs in {
        "cat": "animal mammal legs pet",
        "horse": "animal mammal legs big",
        "whale": "animal mammal water big",
        "mouse": "animal mammal legs small",
        "eagle": "animal flies legs",
        "duck": "animal flies legs water",
        "bee": "animal flies legs small",
        "shark": "animal water big",
        "fish": "animal water pet",
        "frog": "animal legs water",
        "snake": "animal",
        "apple": "food plant fruit sweet",
        "plum": "food plant fruit sweet small",
        "lemon": "food plant fruit",
        "corn": "food plant",
        "cake": "food sweet",
        "egg": "food",
        "car": "vehicle wheels metal big",
        "bike": "vehicle wheels metal",
        "boat": "vehicle water big",
        "plane": "vehicle flies wheels metal big",
        "train": "vehicle wheels metal big electric",
        "chair": "legs",
        "lamp": "electric",
        "oven": "electric metal cooking",
        "knife": "metal cooking",
        "spoon": "metal cooking small",
        "phone": "electric small",
        "key": "metal small",
        "book": "",
    }.items()
}

_WORD = re.compile(r"[a-z]+")


def _article(name: str) -> str:
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def ask_text(key: str) -> str:
    """The admissible action that asks a question, e.g. ``"flies?"``."""
    return f"{key}?"


def guess_text(name: str) -> str:
    """The admissible action that guesses an object, e.g. ``"guess cat"``."""
    return f"guess {name}"


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


_EXACT = {_norm(ask_text(key)): ("ask", key) for key in QUESTIONS}
_EXACT.update({_norm(q): ("ask", key) for key, (q, _) in QUESTIONS.items()})
_EXACT.update({_norm(guess_text(name)): ("guess", name) for name in OBJECTS})


def parse_move(text: str) -> tuple[str, str] | None:
    """Maps text to ``("ask", question_key)``, ``("guess", object)``, or ``None``.

    An admissible action (``"flies?"``, ``"guess cat"``) or a question's full
    wording (``"Can it fly?"``) wins; otherwise an object named in the text is a
    guess (``"Is it a cat?"``), and else a keyword (``"fly"``, ``"metal"``, ...) picks
    the question.
    """
    norm = _norm(text)
    if norm in _EXACT:
        return _EXACT[norm]
    words = norm.split()
    for word in words:
        name = word[:-1] if word.endswith("s") and word[:-1] in OBJECTS else word
        if name in OBJECTS:
            return ("guess", name)
    for key, (_question, keywords) in QUESTIONS.items():
        if any(k in words for k in keywords):
            return ("ask", key)
    return None


class TwentyQuestionsEnv(TextEnv):
    """Find the object the oracle has in mind by asking yes/no questions, then name it.

    ## Description
    The oracle draws one of 30 objects (animals, foods, vehicles, household
    things; :data:`OBJECTS`) and answers 17 yes/no questions about them
    (:data:`QUESTIONS`) by rule, truthfully. Every object has its own set of
    attributes, so questions alone can single it out. The agent asks questions
    or guesses; the observation keeps the answers so far. The admissible
    actions offer ``max_actions`` moves: half questions (the unasked one that
    best splits the objects still possible, and random other unasked ones),
    half guesses (a seeded sample of the objects not yet guessed, possible or
    not). Choosing well is the task. Over seeds 0-199, a random agent picking
    among the admissible actions succeeds in 19% of episodes, the expert (the
    most balanced question; a guess once at most two objects remain) in 100%
    (5.8 turns).

    ## Action Space
    In choose mode, one of the admissible texts: a question key and a question
    mark (``"animal?"``, ``"flies?"``, ``"big?"``, meaning "Is it an animal?",
    "Can it fly?", "Is it bigger than a person?"; see :data:`QUESTIONS`), or a
    guess (``"guess horse"``). In generate mode free text is understood by
    :func:`parse_move`: the full question (``"Can it fly?"``), an object named
    in the text (``"Is it a cat?"`` guesses cat), or a keyword (``"does it
    swim"`` asks ``"water?"``). Text that is none of these is penalised and
    explained.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``, for example (on one line)::

        Twenty questions: find the object. 7 turns left. flies? No.
        Yes: animal. No: flies, big. Not: cat.

    with actions such as ``("legs?", "metal?", "small?", "water?", "guess cat",
    "guess frog", "guess corn", "guess key")``.

    ## Rewards
    +1 for the right guess; -0.05 per question; -0.1 for a wrong guess; -0.2
    for text the oracle cannot understand.

    ## Episode End
    Terminated on the right guess (``info["success"] = True``). Truncated after
    ``max_turns`` turns.

    ## Arguments
    ```python
    gymnasium.make("lmrl/TwentyQuestions-v0", max_turns=10, max_actions=8)
    ```
    * ``max_turns``: questions and guesses per episode (the expert needs at most 7).
    * ``max_actions``: length of the admissible list (4-16).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 10

    QUESTION_COST: ClassVar[float] = -0.05
    WRONG_GUESS: ClassVar[float] = -0.1
    NOT_UNDERSTOOD: ClassVar[float] = -0.2

    def __init__(
        self, max_turns: int = 10, max_actions: int = 8, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode=render_mode)
        if max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1, got {max_turns}")
        if not 4 <= max_actions <= 16:
            raise ConfigError(f"max_actions must be in 4..16, got {max_actions}")
        self.max_turns, self.max_actions = int(max_turns), int(max_actions)
        self.names: tuple[str, ...] = tuple(OBJECTS)
        self.secret = self.names[0]
        self.answers: dict[str, bool] = {}  # question key -> the oracle's answer
        self.wrong: list[str] = []  # objects guessed wrongly
        self.turn = 0

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.secret = self.names[int(self.np_random.integers(len(self.names)))]
        self.answers, self.wrong, self.turn = {}, [], 0
        return self._text(""), self._admissible(), self._info()

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.turn += 1
        move = parse_move(action)
        if move is None:
            shown = action if len(action) <= 20 else action[:17] + "..."
            event, reward = f"I did not understand '{shown}'.", self.NOT_UNDERSTOOD
        elif move[0] == "guess" and move[1] == self.secret:
            text = f"Yes, it is {_article(self.secret)}! You found it."
            return text, (), 1.0, True, False, self._info(True)
        elif move[0] == "guess":
            if move[1] not in self.wrong:
                self.wrong.append(move[1])
            event, reward = f"No, it is not {_article(move[1])}.", self.WRONG_GUESS
        else:
            self.answers[move[1]] = move[1] in OBJECTS[self.secret]
            event = f"{ask_text(move[1])} {'Yes' if self.answers[move[1]] else 'No'}."
            reward = self.QUESTION_COST
        truncated = self.turn >= self.max_turns
        return self._text(event), self._admissible(), reward, False, truncated, self._info()

    # --- state ------------------------------------------------------------------------------
    def possible(self) -> list[str]:
        """The objects consistent with every answer and wrong guess so far."""
        return [
            name
            for name in self.names
            if name not in self.wrong
            and all((key in OBJECTS[name]) == yes for key, yes in self.answers.items())
        ]

    def _ranked_questions(self, possible: list[str]) -> list[str]:
        """Unasked questions that split ``possible``, most balanced first (ties: list order)."""
        splits = []
        for i, key in enumerate(QUESTIONS):
            yes = sum(key in OBJECTS[name] for name in possible)
            if key not in self.answers and 0 < yes < len(possible):
                splits.append((abs(2 * yes - len(possible)), i, key))
        return [key for *_, key in sorted(splits)]

    def _admissible(self) -> tuple[str, ...]:
        """Half questions (the best one and random unasked ones), half guesses (sampled)."""
        rng = self.np_random
        possible = self.possible()
        ranked = self._ranked_questions(possible)
        n_ask = self.max_actions // 2
        asked = ranked[:1]
        rest = [k for k in QUESTIONS if k not in self.answers and k not in asked]
        take = min(n_ask - len(asked), len(rest))
        asked += (
            [rest[int(i)] for i in rng.choice(len(rest), size=take, replace=False)] if take else []
        )
        # Guesses: the expert's when at most two objects remain, then a sample of the
        # objects not yet guessed wrongly (consistent with the answers or not).
        guesses = possible[:1] if len(possible) <= 2 or not ranked else []
        others = [n for n in self.names if n not in self.wrong and n not in guesses]
        take = min(self.max_actions - len(asked) - len(guesses), len(others))
        guesses += (
            [others[int(i)] for i in rng.choice(len(others), size=take, replace=False)]
            if take
            else []
        )
        asked.sort(key=list(QUESTIONS).index)
        guesses.sort(key=self.names.index)
        return tuple(ask_text(k) for k in asked) + tuple(guess_text(g) for g in guesses)

    def _text(self, event: str) -> str:
        left = self.max_turns - self.turn
        parts = [f"Twenty questions: find the object. {left} turn{'s' if left != 1 else ''} left."]
        if event:
            parts.append(event)
        for answer in (True, False):
            labels = [k for k, yes in self.answers.items() if yes == answer]
            if labels:
                parts.append(f"{'Yes' if answer else 'No'}: {', '.join(labels)}.")
        if self.wrong:
            parts.append(f"Not: {', '.join(self.wrong)}.")
        return " ".join(parts)

    def _info(self, success: bool = False) -> dict[str, Any]:
        return {"success": success, "turn": self.turn, "possible": len(self.possible())}

    def expert_action(self) -> str:
        """Guess once at most two objects remain; else ask the most balanced question."""
        possible = self.possible()
        questions = self._ranked_questions(possible)
        if len(possible) <= 2 or not questions:
            return guess_text(possible[0])
        return ask_text(questions[0])
