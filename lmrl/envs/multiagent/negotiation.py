"""``lmrl/Negotiation-v0``: two agents split a pool of items they value privately (AEC)."""

from __future__ import annotations

import itertools
import re
from functools import cache
from typing import Any, ClassVar

from lmrl.envs.multiagent.base import TextAECEnv
from lmrl.errors import ConfigError

ITEMS: tuple[str, ...] = ("book", "hat", "ball")
#: Each agent's values are drawn so that the whole pool is worth this much to it.
TOTAL_VALUE = 10
ACCEPT, NO_DEAL = "accept", "no deal"
_NUMBER_WORDS = {
    "no": 0,
    "zero": 0,
    "none": 0,
    "one": 1,
    "a": 1,
    "an": 1,
    "two": 2,
    "three": 3,
    "four": 4,
}
_TOKEN = re.compile(r"[a-z]+|\d+")

Split = tuple[int, ...]


def _plural(n: int, item: str) -> str:
    return f"{n} {item}{'s' if n != 1 else ''}"


def describe(share: Split) -> str:
    """A share in words: ``"2 books 1 ball"`` (items with none are left out; ``"nothing"``)."""
    parts = [_plural(n, item) for n, item in zip(share, ITEMS, strict=True) if n]
    return " ".join(parts) if parts else "nothing"


def proposal_text(share: Split) -> str:
    """The action that proposes to take ``share`` (the other agent gets the rest): ``"2 books 1 ball"``."""
    return describe(share)


def parse_action(text: str, counts: Split) -> tuple[str, Split | None]:
    """Reads an action: ``("accept", None)``, ``("no deal", None)``, ``("propose", share)``, or ``("say", None)``.

    ``accept``/``deal``/``agree``/``yes`` accept; ``no deal``/``walk away`` end
    without a deal; counts and items alone (``"2 books 1 ball"``, ``"nothing"``)
    or after ``take``/``want``/``get`` (``"I want one hat"``) propose to take
    them (unnamed items: none; more than the pool holds: all of that item).
    Anything else is a message passed on to the other agent.
    """
    low = text.lower()
    words = _TOKEN.findall(low)
    if "no deal" in " ".join(words) or "walk away" in " ".join(words):
        return NO_DEAL, None
    take_at = next((i for i, w in enumerate(words) if w in ("take", "want", "get")), None)
    bare = bool(words) and all(
        w.isdigit() or w in _NUMBER_WORDS or w.rstrip("s") in ITEMS or w in ("nothing", "and")
        for w in words
    )
    if take_at is not None or bare:
        share, named = [0, 0, 0], False
        rest = words if take_at is None else words[take_at + 1 :]
        for i, w in enumerate(rest):
            item = w[:-1] if w.endswith("s") else w
            if item in ITEMS:
                prev = rest[i - 1] if i else ""
                n = int(prev) if prev.isdigit() else _NUMBER_WORDS.get(prev, 1)
                share[ITEMS.index(item)] = min(n, counts[ITEMS.index(item)])
                named = True
        if not named and ("everything" in rest or "all" in rest):
            share, named = list(counts), True
        if named or "nothing" in rest:
            return "propose", tuple(share)
    if words and words[0] in ("accept", "deal", "agree", "agreed", "yes", "ok", "okay"):
        return ACCEPT, None
    return "say", None


@cache
def _value_vectors(counts: Split) -> list[Split]:
    """Every whole-number value vector under which the pool ``counts`` is worth :data:`TOTAL_VALUE`."""
    return [
        v
        for v in itertools.product(range(TOTAL_VALUE + 1), repeat=len(counts))
        if sum(a * b for a, b in zip(v, counts, strict=True)) == TOTAL_VALUE
    ]


class NegotiationEnv(TextAECEnv):
    """Deal or no deal: split a pool of books, hats and balls that each agent values privately.

    ## Description
    A pool of 1-3 books, hats and balls is drawn, and each agent gets private
    whole-number values for the item types such that the whole pool is worth
    10 to it (after Lewis et al., 2017, "Deal or No Deal?"). The agents take
    turns (``player_0`` first). On its turn an agent proposes a split (the
    items it takes; the other gets the rest), accepts the other's standing
    proposal, walks away, or says something else (a message the other agent
    reads). An accepted proposal is a deal; each agent's reward is what its
    share is worth to it, divided by 10. Without a deal nobody gets anything.
    The admissible actions are ``"accept"`` (when the other agent has a
    proposal standing), ``"no deal"``, and six proposals spread from the
    greediest to the most generous (by the agent's own values). Over seeds
    0-199, random pairs reach a deal in 34% of episodes (mean reward 0.17 each);
    expert pairs (privileged: they maximise the product of both values among
    the admissible proposals) in 100% (mean reward 0.75).

    ## Action Space
    Text. Admissible: ``"accept"``, ``"no deal"``, and proposals naming what
    the agent takes, such as ``"2 books 1 ball"`` or ``"nothing"``. Free text
    is read by :func:`parse_action`: items (with ``take``/``want``/``get`` or
    alone) propose, ``accept``/``deal`` accepts, ``no deal`` walks away;
    anything else is a message (it costs the turn). ``"accept"`` with no
    proposal standing is treated as a message.

    ## Observation Space
    Per agent ``{"text": str, "actions": tuple[str, ...]}`` (``actions`` empty
    when it is not the agent's turn). For example (on one line)::

        Split 2 books 1 hat 3 balls; say what you take. Your values: book 2, hat 3, ball 1.
        6 turns left. They offer: you get 1 book 1 hat (worth 5). Your turn.

    ## Rewards
    On a deal, each agent gets the value of its share divided by 10 (in
    [0, 1]); with no deal, 0. Messages and proposals cost nothing.

    ## Episode End
    Every agent is terminated on a deal, on ``"no deal"``, or when
    ``max_turns`` turns pass without a deal. ``info["success"]`` is True once a
    deal is made; ``info["value"]`` is the agent's share value (0-10).

    ## Arguments
    ```python
    lmrl.envs.multiagent.make_aec("lmrl/Negotiation-v0", max_turns=8, n_proposals=6)
    ```
    * ``max_turns``: turns (both agents together) before the game ends without a deal.
    * ``n_proposals``: proposals in each admissible list (1-16).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the acting agent's view).

    ## Version History
    * v0: Initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["ansi", "human"],
        "name": "negotiation_v0",
        "is_parallelizable": False,
    }
    default_action_mode: ClassVar[str] = "choose"
    max_episode_steps: ClassVar[int | None] = 8

    def __init__(
        self, max_turns: int = 8, n_proposals: int = 6, render_mode: str | None = None
    ) -> None:
        self.possible_agents = ["player_0", "player_1"]
        super().__init__(render_mode=render_mode)
        if max_turns < 2:
            raise ConfigError(f"max_turns must be >= 2, got {max_turns}")
        if not 1 <= n_proposals <= 16:
            raise ConfigError(f"n_proposals must be in 1..16, got {n_proposals}")
        self.max_turns, self.n_proposals = int(max_turns), int(n_proposals)
        self.counts: Split = (1, 1, 1)
        self.values: dict[str, Split] = {}
        self.offer: tuple[str, Split] | None = None  # (proposer, the share it takes)
        self.deal: dict[str, Split] | None = None
        self.ended = False
        self.turn = 0
        self.said: dict[str, str] = {}  # what each agent last heard from the other

    def _other(self, agent: str) -> str:
        return self.possible_agents[1 - self.possible_agents.index(agent)]

    def value(self, agent: str, share: Split) -> int:
        """What ``share`` is worth to ``agent``."""
        return sum(v * n for v, n in zip(self.values[agent], share, strict=True))

    def _rest(self, share: Split) -> Split:
        return tuple(c - n for c, n in zip(self.counts, share, strict=True))

    # --- game ------------------------------------------------------------------------------
    def _start(self, options: dict[str, Any] | None) -> str:
        rng = self.np_random
        while True:  # a pool whose total value can be 10 in several ways (not 3 3 3, ...)
            self.counts = tuple(int(c) for c in rng.integers(1, 4, size=3))
            choices = _value_vectors(self.counts)
            if len(choices) >= 3:
                break
        while True:  # two different value vectors, each item worth something to someone
            picks = rng.choice(len(choices), size=2)
            v0, v1 = choices[int(picks[0])], choices[int(picks[1])]
            if all(a or b for a, b in zip(v0, v1, strict=True)) and v0 != v1:
                break
        self.values = dict(zip(self.possible_agents, (v0, v1), strict=True))
        self.offer, self.deal, self.ended, self.turn = None, None, False, 0
        self.said = {a: "" for a in self.possible_agents}
        return self.possible_agents[0]

    def _move(self, agent: str, text: str) -> tuple[dict[str, float], bool, str]:
        other = self._other(agent)
        self.turn += 1
        kind, share = parse_action(text, self.counts)
        self.said[agent] = ""
        if kind == NO_DEAL:
            self.ended = True
            self.said[other], self.said[agent] = (
                "They walked away: no deal.",
                "You walked away: no deal.",
            )
            return {}, True, other
        if kind == ACCEPT and self.offer is not None and self.offer[0] == other:
            taken = self.offer[1]
            self.deal = {other: taken, agent: self._rest(taken)}
            self.ended = True
            self.said[other] = "They accepted your offer."
            rewards = {a: self.value(a, s) / TOTAL_VALUE for a, s in self.deal.items()}
            return rewards, True, other
        if kind == "propose":
            assert share is not None
            self.offer = (agent, share)
            self.said[other] = ""
        else:
            shown = text if len(text) <= 60 else text[:57] + "..."
            self.said[other] = f"They said: '{shown}'."
        if self.turn >= self.max_turns:
            self.ended = True
            return {}, True, other
        return {}, False, other

    # --- views -----------------------------------------------------------------------------
    def observe_text(self, agent: str) -> str:
        vals = ", ".join(f"{item} {v}" for item, v in zip(ITEMS, self.values[agent], strict=True))
        parts = [f"Split {describe(self.counts)}; say what you take. Your values: {vals}."]
        if self.deal is not None:
            mine = self.deal[agent]
            parts.append(f"Deal: you get {describe(mine)} (worth {self.value(agent, mine)}).")
            return " ".join(parts)
        if self.ended:
            if self.said.get(agent):
                parts.append(self.said[agent])
            if "walked away" not in self.said.get(agent, ""):
                parts.append("Out of turns: no deal.")
            return " ".join(parts)
        left = self.max_turns - self.turn
        parts.append(f"{left} turn{'s' if left != 1 else ''} left.")
        if self.said.get(agent):
            parts.append(self.said[agent])
        if self.offer is not None:
            proposer, taken = self.offer
            if proposer == agent:
                parts.append(f"You offered to take {describe(taken)}.")
            else:
                mine = self._rest(taken)
                parts.append(
                    f"They offer: you get {describe(mine)} (worth {self.value(agent, mine)})."
                )
        parts.append(
            "Your turn." if getattr(self, "agent_selection", None) == agent else "Their turn."
        )
        return " ".join(parts)

    def _proposals(self, agent: str) -> list[Split]:
        """``n_proposals`` splits spread from greediest to most generous by ``agent``'s values."""
        splits = sorted(
            itertools.product(*(range(c + 1) for c in self.counts)),
            key=lambda s: (-self.value(agent, s), s),
        )
        k = min(self.n_proposals, len(splits))
        if k == 1:
            return [splits[0]]
        picks = sorted({round(i * (len(splits) - 1) / (k - 1)) for i in range(k)})
        return [splits[i] for i in picks]

    def admissible(self, agent: str) -> tuple[str, ...]:
        if self.ended or getattr(self, "agent_selection", None) != agent:
            return ()
        actions = [ACCEPT] if self.offer is not None and self.offer[0] != agent else []
        actions += [proposal_text(s) for s in self._proposals(agent)]
        return (*actions, NO_DEAL)

    def agent_info(self, agent: str) -> dict[str, Any]:
        mine = self.deal[agent] if self.deal else None
        return {
            "success": self.deal is not None,
            "deal": self.deal is not None,
            "value": self.value(agent, mine) if mine is not None else 0,
        }

    def expert_action(self, agent: str) -> str:
        """Privileged: accept an offer at least as good (by the product of both values) as its own best proposal, else propose that."""
        other = self._other(agent)

        def product(mine: Split) -> tuple[int, int]:
            return (
                self.value(agent, mine) * self.value(other, self._rest(mine)),
                self.value(agent, mine),
            )

        best = max(self._proposals(agent), key=product)
        if self.offer is not None and self.offer[0] == other:
            if (
                product(self._rest(self.offer[1])) >= product(best)
                or self.turn >= self.max_turns - 1
            ):
                return ACCEPT
        return proposal_text(best)
