"""``lmrl/Referential-v0``: a speaker describes a target, a listener picks it out (Parallel)."""

from __future__ import annotations

import itertools
import re
from typing import Any, ClassVar

from lmrl.envs.multiagent.base import WAIT, TextParallelEnv
from lmrl.errors import ConfigError

SIZES: tuple[str, ...] = ("small", "big")
COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
#: Every object: (size, colour, shape); described as "small red circle".
OBJECTS: tuple[tuple[str, str, str], ...] = tuple(itertools.product(SIZES, COLOURS, SHAPES))
MAX_MESSAGE_WORDS = 5
_WORD = re.compile(r"[a-z]+")

Obj = tuple[str, str, str]


def name(obj: Obj) -> str:
    """``"small red circle"``."""
    return " ".join(obj)


def matches(obj: Obj, message: str) -> bool:
    """Whether every attribute word in ``message`` is true of ``obj`` (other words are ignored)."""
    attrs = set(SIZES + COLOURS + SHAPES)
    return all(w in obj for w in _WORD.findall(message.lower()) if w in attrs)


def descriptions(obj: Obj) -> list[str]:
    """The one- and two-word descriptions of ``obj``, shortest first."""
    singles = [obj[1], obj[2], obj[0]]  # colour, shape, size
    pairs = [f"{obj[1]} {obj[2]}", f"{obj[0]} {obj[2]}", f"{obj[0]} {obj[1]}"]
    return singles + pairs


class ReferentialEnv(TextParallelEnv):
    """A referential game: the speaker names the target in a few words, the listener picks it.

    ## Description
    Each episode draws a target and ``n_distractors`` other objects from 32
    (a size, a colour and a shape: ``"small red circle"``), such that some one-
    or two-word description fits the target alone. Step 1: ``speaker_0`` sees the
    target and the distractors and sends a message; ``listener_0`` waits.
    Step 2: ``listener_0`` sees the message and the candidates in a shuffled
    order and picks one; ``speaker_0`` waits. Both are rewarded 1 when the
    listener picks the target. Chance is ``1 / (n_distractors + 1)``: over seeds
    0-199 random pairs succeed in 27% of episodes, expert pairs (the shortest
    description that fits the target alone; the first candidate that fits the
    message) in 100%.

    ## Action Space
    Text. The speaker's admissible messages are the target's one- and two-word
    descriptions (``"red"``, ``"circle"``, ``"small"``, ``"red circle"``,
    ``"small circle"``, ``"small red"``) and two words that fit only
    distractors; free text is sent as it is (its first 5 words). The
    listener's admissible actions are the candidates' names; free text picks
    the candidate it names (or a digit 1-K for the K-th candidate listed).
    An agent that waits has the one admissible action ``"wait"``; its text is
    ignored.

    ## Observation Space
    Per agent ``{"text": str, "actions": tuple[str, ...]}``, for example::

        You are the speaker. Target: small red circle. Others: big red circle,
        small blue star, big green square. Describe the target.

        You are the listener. The speaker says: small. Candidates: big red circle,
        small red circle, small blue star, big green square. Pick the one meant.

    ## Rewards
    1 to both agents when the listener picks the target, else 0; -0.1 to the
    speaker for a message without words, -0.1 to the listener for text that
    names no candidate.

    ## Episode End
    Both agents are terminated after step 2. ``info["success"]`` is True for
    both when the listener picked the target.

    ## Arguments
    ```python
    lmrl.envs.multiagent.make_parallel("lmrl/Referential-v0", n_distractors=3)
    ```
    * ``n_distractors``: objects besides the target (1-7).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the acting agent's view).

    ## Version History
    * v0: Initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "referential_v0",
    }
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 2

    PENALTY: ClassVar[float] = -0.1

    def __init__(self, n_distractors: int = 3, render_mode: str | None = None) -> None:
        self.possible_agents = ["speaker_0", "listener_0"]
        super().__init__(render_mode=render_mode)
        if not 1 <= n_distractors <= 7:
            raise ConfigError(f"n_distractors must be in 1..7, got {n_distractors}")
        self.n_distractors = int(n_distractors)
        self.target: Obj = OBJECTS[0]
        self.others: list[Obj] = []
        self.candidates: list[Obj] = []  # as the listener sees them
        self.messages: tuple[str, ...] = ()
        self.message: str | None = None
        self.choice: Obj | None = None
        self.phase = 0  # 0: the speaker speaks, 1: the listener picks, 2: over

    # --- game ------------------------------------------------------------------------------
    def _start(self, options: dict[str, Any] | None) -> None:
        rng = self.np_random
        while True:
            picks = rng.choice(len(OBJECTS), size=self.n_distractors + 1, replace=False)
            objs = [OBJECTS[int(i)] for i in picks]
            target, others = objs[0], objs[1:]
            if self._unique_description(target, others) is not None:
                break
        self.target, self.others = target, others
        self.candidates = [objs[int(i)] for i in rng.permutation(len(objs))]
        wrong = sorted({w for o in others for w in o if w not in target and w in COLOURS + SHAPES})
        extra = (
            [wrong[int(i)] for i in rng.choice(len(wrong), size=min(2, len(wrong)), replace=False)]
            if wrong
            else []
        )
        self.messages = tuple(
            sorted(descriptions(target) + extra, key=lambda m: (len(m.split()), m))
        )
        self.message, self.choice, self.phase = None, None, 0

    @staticmethod
    def _unique_description(target: Obj, others: list[Obj]) -> str | None:
        for d in descriptions(target):
            if not any(matches(o, d) for o in others):
                return d
        return None

    def _step_all(self, actions: dict[str, str]) -> tuple[dict[str, float], bool]:
        if self.phase == 0:
            words = actions.get("speaker_0", "").split()[:MAX_MESSAGE_WORDS]
            self.message = " ".join(words)
            self.phase = 1
            return (
                {"speaker_0": self.PENALTY} if not _WORD.search(self.message.lower()) else {}
            ), False
        pick = self._read_choice(actions.get("listener_0", ""))
        self.choice, self.phase = pick, 2
        rewards = {"listener_0": self.PENALTY} if pick is None else {}
        if pick == self.target:
            rewards = {"speaker_0": 1.0, "listener_0": 1.0}
        return rewards, True

    def _read_choice(self, text: str) -> Obj | None:
        low = " ".join(_WORD.findall(text.lower()))
        for obj in self.candidates:
            if name(obj) in low:
                return obj
        digits = re.findall(r"\b(\d)\b", text)
        if len(digits) == 1 and 1 <= int(digits[0]) <= len(self.candidates):
            return self.candidates[int(digits[0]) - 1]
        return None

    # --- views -----------------------------------------------------------------------------
    def observe_text(self, agent: str) -> str:
        if agent == "speaker_0":
            head = f"You are the speaker. Target: {name(self.target)}. Others: {', '.join(map(name, self.others))}."
            if self.phase == 0:
                return f"{head} Describe the target."
            said = f"You said: {self.message or '(nothing)'}."
            return (
                f"{head} {said} {self._verdict() if self.phase == 2 else 'Wait for the listener.'}"
            )
        if self.phase == 0:
            return "You are the listener. Wait for the speaker's message."
        head = (
            f"You are the listener. The speaker says: {self.message or '(nothing)'}. "
            f"Candidates: {', '.join(map(name, self.candidates))}."
        )
        return f"{head} {self._verdict() if self.phase == 2 else 'Pick the one meant.'}"

    def _verdict(self) -> str:
        if self.choice == self.target:
            return f"The listener picked {name(self.target)}: right!"
        picked = name(self.choice) if self.choice else "nothing"
        return f"The listener picked {picked}; the target was {name(self.target)}."

    def admissible(self, agent: str) -> tuple[str, ...]:
        if self.phase == 2:
            return ()
        if agent == "speaker_0":
            return self.messages if self.phase == 0 else (WAIT,)
        return tuple(map(name, self.candidates)) if self.phase == 1 else (WAIT,)

    def agent_info(self, agent: str) -> dict[str, Any]:
        return {"success": self.phase == 2 and self.choice == self.target, "phase": self.phase}

    def expert_action(self, agent: str) -> str:
        """Speaker: the shortest description that fits the target alone. Listener: the first candidate that fits."""
        if agent == "speaker_0":
            if self.phase != 0:
                return WAIT
            return self._unique_description(self.target, self.others) or name(self.target)
        if self.phase != 1:
            return WAIT
        fits = [o for o in self.candidates if matches(o, self.message or "")]
        return name(fits[0] if fits else self.candidates[0])
