"""The one adapter from text spaces to the numeric spaces RLlib batches.

:class:`TokenizedEnv` wraps a :class:`~lmrl.envs.base.TextEnv`. It tokenises
the observation text into a left-padded prompt and, in *choose* mode, each
admissible action into a right-padded candidate; it turns the policy's
numeric action back into text for the env. Envs never see token ids; the
policy never sees strings.

The tokenizer is duck-typed (``__call__(text, add_special_tokens=False)``,
``decode``, ``eos_token_id``, ``pad_token_id``, ``len``), so this module does
not import ``transformers``.

Multi-turn chat (``AdapterConfig.multi_turn`` with a chat template): the
prompt is the whole conversation, system message, then each earlier
observation as a user turn and the policy's action as the assistant turn, then
the current observation. The assistant turns are the exact token ids the
policy sampled then (:class:`TokenizedEnv` keeps them per episode), never
re-tokenised text, so the learner's tokens for turn k are the sampled ones.
When the conversation outgrows ``max_prompt_tokens``, the oldest whole turns
leave first. A text observation may carry ``"history"`` (earlier
``(observation, action)`` text pairs) for evaluation and Serve, which render
those turns by tokenising them. An env's ``info["message"]`` (what it says
back after an action), when present, is the user turn instead of the whole
observation text (for envs whose text repeats the transcript).

Observation (all ``int64``):
    ``prompt_ids`` (P,), ``prompt_mask`` (P,); choose mode adds
    ``cand_ids`` (K, C), ``cand_mask`` (K, C) and ``action_mask`` (K,).
Action:
    choose: ``Discrete(K)`` (index into the admissible actions);
    generate: ``MultiDiscrete([V] * T)`` (token ids; EOS ends the text).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lmrl.errors import ConfigError

PROMPT_FORMAT = "{text}\nAction:"
#: The user turn of a chat prompt; ``{text}`` is the observation.
CHAT_USER_FORMAT = "{text}"
#: Sections of an env's docstring that make its chat system message.
SYSTEM_SECTIONS: tuple[str, ...] = ("Description", "Rewards")
_MAX_SYSTEM_CHARS = 1200


def env_instructions(doc: str, sections: tuple[str, ...] = SYSTEM_SECTIONS) -> str:
    """A chat system message from an env's own documentation.

    The docstring's summary line and its ``## Description`` and ``## Rewards``
    sections (Gymnasium's layout, which every lmrl env follows), with reST
    literals unquoted, then one line on how to answer.

    Args:
        doc: The env class docstring (``lmrl.envs.env_info(id)["doc"]``).
        sections: Which ``## Heading`` sections to keep.

    Example:
        >>> env_instructions("Walk to the goal.\n\n## Description\nA maze.\n\n## Rewards\n+1 at the goal.")
        'Walk to the goal.\n\nA maze.\n\nRewards: +1 at the goal.\n\nAnswer with the action only.'
    """
    doc = doc.strip()
    summary = doc.splitlines()[0].strip() if doc else ""
    parts = [summary] if summary else []
    for name in sections:
        m = re.search(rf"^## {re.escape(name)}\s*\n(.*?)(?=^## |\Z)", doc, flags=re.S | re.M)
        if m:
            body = " ".join(m.group(1).split())
            parts.append(body if name == "Description" else f"{name}: {body}")
    text = "\n\n".join(parts).replace("``", "")
    if len(text) > _MAX_SYSTEM_CHARS:
        text = text[: _MAX_SYSTEM_CHARS - 3].rsplit(" ", 1)[0] + "..."
    return (text + "\n\n" if text else "") + "Answer with the action only."


@dataclass(frozen=True)
class AdapterConfig:
    """Shapes and prompt format shared by the adapter, the policy and Serve."""

    action_mode: Literal["choose", "generate"] = "choose"
    max_prompt_tokens: int = 96
    max_new_tokens: int = 6
    max_candidates: int = 8
    max_candidate_tokens: int = 8
    prompt_format: str = PROMPT_FORMAT
    #: Chat prompts: the system message (None: plain ``prompt_format`` text, no chat template).
    chat_system: str | None = None
    #: Choose mode: score candidates by the ``mean`` or the ``sum`` of their token log-probs.
    choice_scoring: Literal["mean", "sum"] = "mean"
    #: Choose mode: divide candidate scores by this before the softmax (None: the policy temperature).
    choice_temperature: float | None = None
    #: Chat prompts: earlier turns stay in the prompt as user/assistant turns (token-in/token-out).
    multi_turn: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored in ``lmrl.json``)."""
        return asdict(self)


def user_turn(obs: dict[str, Any], info: dict[str, Any]) -> str:
    """The user turn of a multi-turn chat for one observation.

    The env's ``info["message"]`` (what it said back after the action) when it
    gives one -- envs whose observation text repeats the whole transcript do --
    else the observation text.
    """
    return str(info.get("message") or obs["text"])


class TextCodec:
    """Text <-> token arrays with fixed shapes, for one tokenizer and adapter config."""

    def __init__(self, tokenizer: Any, config: AdapterConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.vocab_size = len(tokenizer)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        )
        self.chat = config.chat_system is not None and bool(
            getattr(tokenizer, "chat_template", None)
        )

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat_messages(self, text: str, actions: tuple[str, ...] = ()) -> list[dict[str, str]]:
        """The chat a prompt renders: the system message, then the observation as the user turn.

        In choose mode the system message ends with the admissible actions, one per
        line. Measured with SmolLM2-135M-Instruct over 24 states each, that put 0.63
        of the policy's probability on the expert's action in lmrl/TwentyQuestions-v0
        (0.38 with the list at the end of the user turn; uniform 0.125) and 0.45 in
        lmrl/Maze-v0 (0.49; uniform 0.42).
        """
        system = self.config.chat_system or ""
        if self.config.action_mode == "choose" and actions:
            listed = "\n".join(f"- {a}" for a in actions[: self.config.max_candidates])
            system = f"{system}\n\nAdmissible actions:\n{listed}"
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": CHAT_USER_FORMAT.format(text=text)},
        ]

    @property
    def multi_turn(self) -> bool:
        """True when prompts hold the whole conversation (multi-turn config and a chat template)."""
        return self.chat and self.config.multi_turn

    @functools.cached_property
    def _turn_glue(self) -> list[int]:
        """Template ids between an assistant turn's content and the next user turn's content."""
        user1, answer, user2 = "\x00LMRL_U1\x00", "\x00LMRL_A\x00", "\x00LMRL_U2\x00"
        messages = [
            {"role": "system", "content": "s"},
            {"role": "user", "content": user1},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": user2},
        ]
        rendered = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        between = rendered.partition(answer)[2].partition(user2)[0]
        return self._ids(between)

    def turn_ids(self, text: str, action_ids: list[int]) -> list[int]:
        """One finished turn of a multi-turn prompt: the user turn, the assistant header, the action, the glue.

        Args:
            text: The observation (user turn) the action answered.
            action_ids: The action's token ids exactly as the policy produced them
                (generate: sampled ids up to and including EOS; choose: the candidate's ids).

        Returns:
            Token ids that go between the system head and the next user turn's text.
        """
        glue = self._turn_glue
        # The action's EOS closes the assistant turn; the template's own end-of-turn would repeat it.
        if action_ids and action_ids[-1] == self.eos_id and glue and glue[0] == self.eos_id:
            glue = glue[1:]
        return self._ids(text) + self._assistant_header + list(action_ids) + glue

    @functools.cached_property
    def _assistant_header(self) -> list[int]:
        return self._chat_head_tail(())[1]

    def text_turn_ids(self, text: str, action: str) -> list[int]:
        """:meth:`turn_ids` for an action given as text (evaluation, Serve): tokenised as a candidate is."""
        return self.turn_ids(text, self._ids(action) + [self.eos_id])

    def _chat_head_tail(self, actions: tuple[str, ...]) -> tuple[list[int], list[int]]:
        # Rendered around a marker, so a long observation loses its oldest tokens while the
        # system message (with the admissible actions) and the assistant header stay whole.
        marker = "\x00LMRL_OBS\x00"
        rendered = self.tokenizer.apply_chat_template(
            self.chat_messages(marker, actions), tokenize=False, add_generation_prompt=True
        )
        head, _, tail = rendered.partition(marker)
        return self._ids(head), self._ids(tail)

    def _prompt_ids(
        self, text: str, actions: tuple[str, ...], turns: list[list[int]] | None = None
    ) -> list[int]:
        p = self.config.max_prompt_tokens
        if not self.chat:
            return self._ids(self.config.prompt_format.format(text=text))[-p:]
        head_ids, tail_ids = self._chat_head_tail(actions)
        room = p - len(head_ids) - len(tail_ids)
        if room < 1:
            raise ConfigError(
                f"policy.max_prompt_tokens ({p}) leaves no room for the observation: the chat system "
                f"message and headers take {len(head_ids) + len(tail_ids)} tokens; raise max_prompt_tokens"
            )
        current = self._ids(text)
        kept: list[list[int]] = []
        used = len(current)
        for turn in reversed(turns or []):  # the most recent whole turns that fit
            if used + len(turn) > room:
                break
            kept.insert(0, turn)
            used += len(turn)
        return head_ids + [t for turn in kept for t in turn] + current[-room:] + tail_ids

    def encode_prompt(
        self, text: str, actions: tuple[str, ...] = (), turns: list[list[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded prompt ids and mask; keeps the most recent observation tokens if too long.

        With a chat system message and a tokenizer that has a chat template, the
        prompt is the rendered chat (system message listing ``actions`` in choose
        mode, the observation as the user turn, the assistant header).

        Args:
            text: The observation.
            actions: Admissible actions (choose mode).
            turns: Multi-turn chat: the earlier turns as :meth:`turn_ids` gives them,
                oldest first; the oldest that do not fit are left out.
        """
        p = self.config.max_prompt_tokens
        ids = self._prompt_ids(text, actions, turns if self.multi_turn else None)
        out = np.full(p, self.pad_id, dtype=np.int64)
        mask = np.zeros(p, dtype=np.int64)
        if ids:
            out[p - len(ids) :] = ids
            mask[p - len(ids) :] = 1
        return out, mask

    def encode_candidates(
        self, actions: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-padded candidate ids (each `` action`` + EOS), their mask, and the valid-candidate mask."""
        k, c = self.config.max_candidates, self.config.max_candidate_tokens
        ids = np.full((k, c), self.pad_id, dtype=np.int64)
        mask = np.zeros((k, c), dtype=np.int64)
        valid = np.zeros(k, dtype=np.int64)
        lead = (
            "" if self.chat else " "
        )  # a chat answer starts the assistant turn; plain text follows "Action:"
        for i, action in enumerate(actions[:k]):
            toks = (self._ids(lead + action)[: c - 1]) + [self.eos_id]
            ids[i, : len(toks)] = toks
            mask[i, : len(toks)] = 1
            valid[i] = 1
        return ids, mask, valid

    def decode_action(self, token_ids: np.ndarray | list[int]) -> str:
        """Generated token ids -> text, cut at the first EOS."""
        ids = [int(t) for t in token_ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def observation_space(self) -> spaces.Dict:
        """The numeric observation space for this config."""
        p, k, c, v = (
            self.config.max_prompt_tokens,
            self.config.max_candidates,
            self.config.max_candidate_tokens,
            self.vocab_size,
        )
        d = {
            "prompt_ids": spaces.Box(0, v - 1, (p,), np.int64),
            "prompt_mask": spaces.Box(0, 1, (p,), np.int64),
        }
        if self.config.action_mode == "choose":
            d["cand_ids"] = spaces.Box(0, v - 1, (k, c), np.int64)
            d["cand_mask"] = spaces.Box(0, 1, (k, c), np.int64)
            d["action_mask"] = spaces.Box(0, 1, (k,), np.int64)
        return spaces.Dict(d)

    def action_space(self) -> spaces.Space:
        """Discrete(K) in choose mode, MultiDiscrete([V] * T) in generate mode."""
        if self.config.action_mode == "choose":
            return spaces.Discrete(self.config.max_candidates)
        return spaces.MultiDiscrete([self.vocab_size] * self.config.max_new_tokens)

    def encode_observation(
        self, obs: dict[str, Any], turns: list[list[int]] | None = None
    ) -> dict[str, np.ndarray]:
        """A text observation ``{"text", "actions"}`` -> the numeric observation.

        Args:
            obs: The text observation; with multi-turn chat it may carry ``"history"``,
                earlier ``(observation, action)`` text pairs, used when ``turns`` is None.
            turns: Multi-turn chat: earlier turns as exact ids (see :meth:`turn_ids`).
        """
        if turns is None and self.multi_turn and obs.get("history"):
            turns = [self.text_turn_ids(text, action) for text, action in obs["history"]]
        prompt, pmask = self.encode_prompt(obs["text"], tuple(obs.get("actions", ())), turns)
        out = {"prompt_ids": prompt, "prompt_mask": pmask}
        if self.config.action_mode == "choose":
            out["cand_ids"], out["cand_mask"], out["action_mask"] = self.encode_candidates(
                tuple(obs.get("actions", ()))
            )
        return out

    def action_text(self, action: Any, admissible: tuple[str, ...]) -> str:
        """The policy's numeric action -> the text the env receives."""
        if self.config.action_mode == "choose":
            index = int(action)
            # A masked index cannot be sampled; fall back to empty text (the env penalises it).
            return admissible[index] if 0 <= index < len(admissible) else ""
        return self.decode_action(np.asarray(action).reshape(-1))

    def action_ids(self, action: Any, encoded: dict[str, np.ndarray]) -> list[int]:
        """The token ids of a numeric action as the policy produced them (for :meth:`turn_ids`).

        Args:
            action: Choose: the candidate index; generate: the sampled ids (T,).
            encoded: The numeric observation the action answered (its candidates).

        Returns:
            Generate: the sampled ids up to and including the first EOS (all of them
            without one); choose: the chosen candidate's ids (its action, then EOS).
        """
        if self.config.action_mode == "choose":
            index = int(action)
            if not 0 <= index < len(encoded["cand_ids"]):
                return []
            return [int(t) for t in encoded["cand_ids"][index][encoded["cand_mask"][index] > 0]]
        ids = [int(t) for t in np.asarray(action).reshape(-1)]
        return ids[: ids.index(self.eos_id) + 1] if self.eos_id in ids else ids


class TokenizedEnv(gym.Wrapper):
    """Wraps a text env so that RLlib sees fixed-shape integer arrays.

    Args:
        env: A text env (``{"text", "actions"}`` observations, ``str`` actions).
        tokenizer: Any HF-style tokenizer.
        config: Shapes and action mode.

    Example:
        >>> env = TokenizedEnv(lmrl.envs.make("lmrl/Maze-v0"), tokenizer, AdapterConfig())
        >>> obs, info = env.reset(seed=0)
        >>> obs["prompt_ids"].shape
        (96,)
    """

    def __init__(self, env: gym.Env, tokenizer: Any, config: AdapterConfig) -> None:
        super().__init__(env)
        self.codec = TextCodec(tokenizer, config)
        self.observation_space = self.codec.observation_space()
        self.action_space = self.codec.action_space()
        self._admissible: tuple[str, ...] = ()
        # Multi-turn chat: this episode's finished turns as exact ids, the current user turn and
        # its encoding (whose candidates say which ids a chosen action was).
        self._turns: list[list[int]] = []
        self._user_text = ""
        self._encoded: dict[str, np.ndarray] = {}

    def _encode(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[dict, dict]:
        self._admissible = tuple(obs.get("actions", ()))
        if len(self._admissible) > self.codec.config.max_candidates:
            info = {**info, "truncated_candidates": len(self._admissible)}
        if self.codec.multi_turn:
            self._user_text = user_turn(obs, info)
            self._encoded = self.codec.encode_observation(
                {**obs, "text": self._user_text}, self._turns
            )
        else:
            self._encoded = self.codec.encode_observation(obs)
        return self._encoded, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._turns = []
        return self._encode(obs, info)

    def step(self, action: Any):
        text = self.codec.action_text(action, self._admissible)
        if self.codec.multi_turn:  # the ids the policy produced, never the text re-tokenised
            self._turns.append(
                self.codec.turn_ids(self._user_text, self.codec.action_ids(action, self._encoded))
            )
        obs, reward, terminated, truncated, info = self.env.step(text)
        enc, info = self._encode(obs, {**info, "action_text": text})
        return enc, reward, terminated, truncated, info
