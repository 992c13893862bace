"""The one adapter from text spaces to the numeric spaces RLlib batches.

:class:`TokenizedEnv` wraps a :class:`~lmrl.envs.base.TextEnv`. It tokenises
the observation text into a left-padded prompt and, in *choose* mode, each
admissible action into a right-padded candidate; it turns the policy's
numeric action back into text for the env. Envs never see token ids; the
policy never sees strings.

The tokenizer is duck-typed (``__call__(text, add_special_tokens=False)``,
``decode``, ``eos_token_id``, ``pad_token_id``, ``len``), so this module does
not import ``transformers``.

Observation (all ``int64``):
    ``prompt_ids`` (P,), ``prompt_mask`` (P,); choose mode adds
    ``cand_ids`` (K, C), ``cand_mask`` (K, C) and ``action_mask`` (K,).
Action:
    choose: ``Discrete(K)`` (index into the admissible actions);
    generate: ``MultiDiscrete([V] * T)`` (token ids; EOS ends the text).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

PROMPT_FORMAT = "{text}\nAction:"


@dataclass(frozen=True)
class AdapterConfig:
    """Shapes and prompt format shared by the adapter, the policy and Serve."""

    action_mode: Literal["choose", "generate"] = "choose"
    max_prompt_tokens: int = 96
    max_new_tokens: int = 6
    max_candidates: int = 8
    max_candidate_tokens: int = 8
    prompt_format: str = PROMPT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored in ``lmrl.json``)."""
        return asdict(self)


class TextCodec:
    """Text <-> token arrays with fixed shapes, for one tokenizer and adapter config."""

    def __init__(self, tokenizer: Any, config: AdapterConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.vocab_size = len(tokenizer)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_prompt(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded prompt ids and mask; keeps the most recent tokens if too long."""
        p = self.config.max_prompt_tokens
        ids = self._ids(self.config.prompt_format.format(text=text))[-p:]
        out = np.full(p, self.pad_id, dtype=np.int64)
        mask = np.zeros(p, dtype=np.int64)
        if ids:
            out[p - len(ids) :] = ids
            mask[p - len(ids) :] = 1
        return out, mask

    def encode_candidates(self, actions: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right-padded candidate ids (each `` action`` + EOS), their mask, and the valid-candidate mask."""
        k, c = self.config.max_candidates, self.config.max_candidate_tokens
        ids = np.full((k, c), self.pad_id, dtype=np.int64)
        mask = np.zeros((k, c), dtype=np.int64)
        valid = np.zeros(k, dtype=np.int64)
        for i, action in enumerate(actions[:k]):
            toks = (self._ids(" " + action)[: c - 1]) + [self.eos_id]
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

    def encode_observation(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        """A text observation ``{"text", "actions"}`` -> the numeric observation."""
        prompt, pmask = self.encode_prompt(obs["text"])
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

    def _encode(self, obs: dict[str, Any], info: dict[str, Any]) -> tuple[dict, dict]:
        self._admissible = tuple(obs.get("actions", ()))
        if len(self._admissible) > self.codec.config.max_candidates:
            info = {**info, "truncated_candidates": len(self._admissible)}
        return self.codec.encode_observation(obs), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._encode(obs, info)

    def step(self, action: Any):
        text = self.codec.action_text(action, self._admissible)
        obs, reward, terminated, truncated, info = self.env.step(text)
        enc, info = self._encode(obs, {**info, "action_text": text})
        return enc, reward, terminated, truncated, info
