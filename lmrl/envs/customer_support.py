"""``lmrl/CustomerSupport-v0``: serve a simulated customer who reveals details only when asked."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

#: The agent's dialogue acts and the utterance that performs each (the admissible actions).
UTTERANCES: dict[str, str] = {
    "greet": "How can I help you?",
    "ask_order": "What is your order number?",
    "ask_issue": "What is wrong with the item?",
    "ask_city": "What is the new city?",
    "refund": "I have refunded your order.",
    "track": "I have sent the tracking link.",
    "change_address": "I have updated your address.",
    "cancel": "I have cancelled your order.",
}

#: Per intent: the act that resolves it and the slots it needs.
INTENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "refund": ("refund", ("order_id", "issue")),
    "track_order": ("track", ("order_id",)),
    "change_address": ("change_address", ("order_id", "city")),
    "cancel_order": ("cancel", ("order_id",)),
}
_ASK_SLOT = {"ask_order": "order_id", "ask_issue": "issue", "ask_city": "city"}
_SLOT_ACT = {slot: act for act, slot in _ASK_SLOT.items()}
_SLOT_NAME = {
    "order_id": "my order number",
    "issue": "what is wrong with it",
    "city": "the new city",
}

_OPENINGS = (
    "Hi, I need some help.",
    "Hello, I have a problem with an order.",
    "Hi there, can you help me?",
)
_REQUESTS = {
    "refund": ("I would like a refund.", "I want my money back."),
    "track_order": ("Where is my order?", "Where is my parcel?"),
    "change_address": (
        "I need to change my delivery address.",
        "I moved and need a new address.",
    ),
    "cancel_order": ("I want to cancel my order.", "Please cancel my order."),
}
_ISSUES = (
    "It arrived broken.",
    "It is the wrong size.",
    "It stopped working.",
    "It is the wrong colour.",
)
_CITIES = ("Leeds", "York", "Bath", "Derby", "Oxford", "Bristol", "Glasgow", "Cardiff")
_ORDER_LETTERS = "ABCDEFGHJK"

# Keyword rules for free text (generate mode); checked in order, first match wins.
_QUESTION_RULES = (
    ("ask_order", re.compile(r"\border\s*(number|id|no|#)|\bnumber\b")),
    ("ask_city", re.compile(r"\b(city|address|ship|where to)\b")),
    ("ask_issue", re.compile(r"\b(wrong|issue|problem|broken|fault)\b")),
    ("greet", re.compile(r"\b(help|assist|hello|hi)\b")),
)
_STATEMENT_RULES = (
    ("refund", re.compile(r"\b(refund\w*|money back|reimburs\w*)\b")),
    ("track", re.compile(r"\btrack\w*")),
    ("cancel", re.compile(r"\bcancel\w*")),
    ("change_address", re.compile(r"\baddress\b")),
    ("greet", re.compile(r"\b(help|assist|hello|hi)\b")),
)
_QUESTION_WORDS = (
    "what",
    "which",
    "where",
    "could",
    "can",
    "may",
    "how",
    "would",
    "tell",
    "please",
)


def parse_act(text: str) -> str | None:
    """Maps agent text to a dialogue act name (a key of :data:`UTTERANCES`), or ``None``."""
    norm = " ".join(text.lower().split())
    for act, utterance in UTTERANCES.items():
        if norm == utterance.lower():
            return act
    first = norm.split(" ", 1)[0] if norm else ""
    is_question = "?" in norm or first in _QUESTION_WORDS
    for act, pattern in _QUESTION_RULES if is_question else _STATEMENT_RULES:
        if pattern.search(norm):
            return act
    return None


class CustomerSupportEnv(TextEnv):
    """Help a simulated customer: find out what they want, collect the details, resolve it.

    ## Description
    A seeded rule-based customer has one of four intents (``refund``,
    ``track_order``, ``change_address``, ``cancel_order``) and the slots the
    intent needs: an order number such as ``A1234``, plus what is wrong with
    the item (refund) or the new city (change of address). The customer opens
    vaguely and reveals the intent and each slot only when asked. The agent
    must ask, then resolve the right request. Over seeds 0-199, a uniformly
    random agent succeeds in 22% of episodes, the expert in 100%.

    ## Action Space
    In choose mode, one of the fixed utterances in :data:`UTTERANCES` (all are
    admissible every turn): ``"How can I help you?"``, ``"What is your order
    number?"``, ``"What is wrong with the item?"``, ``"What is the new city?"``,
    and the resolutions ``"I have refunded your order."``, ``"I have sent the
    tracking link."``, ``"I have updated your address."``, ``"I have cancelled
    your order."``. In generate
    mode, free text is mapped to these acts by keyword rules (see
    :func:`parse_act`); text that matches none makes the customer say they did
    not understand.

    ## Observation Space
    ``{"text": str, "actions": tuple[str, ...]}``; the text is the last
    ``history`` lines of the dialogue, for example::

        Customer: Hi, I need some help.
        Agent: How can I help you?
        Customer: I would like a refund.

    ## Rewards
    -0.05 per turn; -0.1 for text the customer does not understand; -0.5 for a
    wrong or premature resolution (the customer complains and the dialogue
    goes on); +1 for resolving the right request once its slots are collected.

    ## Episode End
    Terminated on the right resolution (``info["success"] = True``).
    Truncated after ``max_turns`` agent turns.

    ## Arguments
    ```python
    gymnasium.make("lmrl/CustomerSupport-v0", max_turns=8, history=6)
    ```
    * ``max_turns``: turn limit (the expert needs 3 or 4 turns).
    * ``history``: how many dialogue lines the observation keeps.
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "choose"
    dialogue: ClassVar[bool] = True
    max_episode_steps: ClassVar[int | None] = 8

    TURN_COST: ClassVar[float] = -0.05
    NOT_UNDERSTOOD: ClassVar[float] = -0.1
    WRONG_RESOLUTION: ClassVar[float] = -0.5

    def __init__(
        self, max_turns: int = 8, history: int = 6, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode=render_mode)
        if max_turns < 1:
            raise ConfigError(f"max_turns must be >= 1, got {max_turns}")
        if history < 1:
            raise ConfigError(f"history must be >= 1, got {history}")
        self.max_turns, self.history = int(max_turns), int(history)
        self.actions: tuple[str, ...] = tuple(UTTERANCES.values())
        self.intent = "refund"
        self.slots: dict[str, str] = {}
        self.request = _REQUESTS["refund"][0]
        self.revealed: set[str] = set()  # "intent" and the slot names the customer has told
        self.lines: list[str] = []
        self.turn = 0

    def _pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.np_random.integers(len(options)))]

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        intents = tuple(INTENTS)
        self.intent = self._pick(intents)
        letter = _ORDER_LETTERS[int(self.np_random.integers(len(_ORDER_LETTERS)))]
        self.slots = {"order_id": f"{letter}{int(self.np_random.integers(1000, 10000))}"}
        if self.intent == "refund":
            self.slots["issue"] = self._pick(_ISSUES)
        if self.intent == "change_address":
            self.slots["city"] = self._pick(_CITIES)
        self.request = self._pick(_REQUESTS[self.intent])
        self.revealed = set()
        self.turn = 0
        self.lines = [f"Customer: {self._pick(_OPENINGS)}"]
        return self._text(), self.actions, self._info(None)

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        self.turn += 1
        act = parse_act(action)
        shown = action if len(action) <= 60 else action[:57] + "..."
        self.lines.append(f"Agent: {shown}")
        reward, success = self.TURN_COST, False
        if act is None:
            reply, reward = "Sorry, I do not understand.", self.NOT_UNDERSTOOD
        elif act == "greet":
            self.revealed.add("intent")
            reply = self.request
        elif act in _ASK_SLOT:
            slot = _ASK_SLOT[act]
            if slot in self.slots:
                self.revealed.add(slot)
                reply = self._slot_reply(slot)
            else:
                reply = {
                    "issue": "Nothing is wrong with the item.",
                    "city": "I do not need a new address.",
                }[slot]
        else:
            resolve_act, needed = INTENTS[self.intent]
            missing = [s for s in needed if s not in self.revealed]
            if act != resolve_act:
                reply, reward = "That is not what I asked for.", self.WRONG_RESOLUTION
            elif missing:
                reply = f"But you do not know {_SLOT_NAME[missing[0]]} yet."
                reward = self.WRONG_RESOLUTION
            else:
                reply, reward, success = "Thanks, that solves it!", 1.0, True
        self.lines.append(f"Customer: {reply}")
        truncated = not success and self.turn >= self.max_turns
        info = {
            **self._info(act, success),
            "message": self.lines[-1],
        }  # the new user turn of a chat
        return self._text(), self.actions, reward, success, truncated, info

    def _slot_reply(self, slot: str) -> str:
        if slot == "order_id":
            return f"It is {self.slots['order_id']}."
        if slot == "city":
            return f"Please ship it to {self.slots['city']}."
        return self.slots["issue"]

    def _text(self) -> str:
        return "\n".join(self.lines[-self.history :])

    def _info(self, act: str | None, success: bool = False) -> dict[str, Any]:
        return {"success": success, "turn": self.turn, "act": act}

    def expert_action(self) -> str:
        """Ask what the customer wants, ask each missing slot, then resolve."""
        if "intent" not in self.revealed:
            return UTTERANCES["greet"]
        resolve_act, needed = INTENTS[self.intent]
        for slot in needed:
            if slot not in self.revealed:
                return UTTERANCES[_SLOT_ACT[slot]]
        return UTTERANCES[resolve_act]
