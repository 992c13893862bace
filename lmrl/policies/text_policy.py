"""``TextPolicy``: a trained LLM policy for text in, text out, outside RLlib.

Loads an exported policy directory (HF model + tokenizer + ``lmrl.json``) and
acts on batches of text observations with exactly the operations the RLModule
uses (:mod:`lmrl.policies.lm_ops`), so evaluation and serving choose what the
trained module would. Used by ``lmrl eval``, ``lmrl envs rollout --policy
PATH`` and the Serve deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmrl.envs.adapter import AdapterConfig, TextCodec, user_turn
from lmrl.errors import PolicyError
from lmrl.policies import lm_ops
from lmrl.policies.lm import load_lm
from lmrl.policies.sampler import RowSampling, sample

META_FILE = "lmrl.json"
#: Prompt-candidate pairs scored at once in choose mode: the shared prompt's KV cache is copied
#: once per candidate, so this bounds those copies (16 observations of 8 candidates; with 48
#: candidates, 2 observations: at SmolLM2's size and 600-token prompts a pair holds ~28 MB).
CHOICE_PAIRS = 128


def choice_chunk_rows(candidates: int) -> int:
    """Observations to score at once when each has up to ``candidates`` admissible actions.

    Example:
        >>> choice_chunk_rows(8), choice_chunk_rows(9), choice_chunk_rows(48), choice_chunk_rows(500)
        (16, 14, 2, 1)
    """
    return max(1, CHOICE_PAIRS // max(1, candidates))


def read_meta(path: str | Path) -> dict[str, Any]:
    """Reads ``lmrl.json`` from an exported policy directory."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise PolicyError(
            f"`{path}` is not an exported lmrl policy (no {META_FILE}); pass a run directory's "
            "`export/` folder or a directory written by `lmrl train`"
        )
    return json.loads(meta_path.read_text())


class TextPolicy:
    """Batched text policy around a causal LM.

    Args:
        lm: The causal LM (dropout off, eval mode).
        tokenizer: Its tokenizer.
        adapter: Prompt format, action mode and shapes.
        temperature: Sampling temperature.
        meta: The rest of ``lmrl.json`` (env id, version...).

    Example:
        >>> policy = TextPolicy.from_pretrained("runs/quickstart/export")
        >>> policy.act([{"text": "You are in a maze...", "actions": ("north", "east")}])
        ['north']
    """

    def __init__(
        self,
        lm,
        tokenizer,
        adapter: AdapterConfig,
        temperature: float = 1.0,
        meta: dict | None = None,
        q_head: torch.nn.Module | None = None,
    ):
        self.lm = lm.eval()
        self.tokenizer = tokenizer
        self.codec = TextCodec(tokenizer, adapter)
        self.adapter = adapter
        self.temperature = temperature
        self.meta = dict(meta or {})
        self.q_head = q_head.eval() if q_head is not None else None

    @classmethod
    def from_pretrained(cls, path: str | Path) -> TextPolicy:
        """Loads an exported policy directory."""
        meta = read_meta(path)
        lm, tokenizer = load_lm(str(path))
        adapter = AdapterConfig(**meta["adapter"])
        q_head = None
        if meta.get("policy_head") == "q":
            state = torch.load(Path(path) / meta["heads"]["q_head"], weights_only=True)
            hidden, width = state["0.weight"].shape[1], state["0.weight"].shape[0]
            q_head = torch.nn.Sequential(torch.nn.Linear(hidden, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))
            q_head.load_state_dict(state)
        return cls(lm, tokenizer, adapter, float(meta.get("temperature", 1.0)), meta, q_head)

    @property
    def action_mode(self) -> str:
        """``"choose"`` or ``"generate"``."""
        return self.adapter.action_mode

    def encode(self, observations: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Observations ``{"text", "actions"}`` -> the stacked batch that :meth:`choice_logits` takes."""
        encoded = [self.codec.encode_observation(o) for o in observations]
        return {k: torch.as_tensor(np.stack([e[k] for e in encoded])) for k in encoded[0]}

    def choice_logits(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, K) logits over candidate slots: LM scores, or Q-values for a DQN policy.

        Args:
            b: An encoded batch (``TextCodec.encode_observation`` rows stacked):
                ``prompt_ids``, ``prompt_mask``, ``cand_ids``, ``cand_mask``, ``action_mask``.

        Returns:
            Logits at the policy's temperature; slots that hold no admissible
            action get a large negative value. ``act`` and the served replies rank by them.
        """
        if self.q_head is not None:
            scores = self.q_head(lm_ops.candidate_features(self.lm, b)).squeeze(-1)
            return torch.where(b["action_mask"] > 0, scores / self.temperature, lm_ops.NEG)
        temperature = self.adapter.choice_temperature or self.temperature
        # In chunks: the shared prompt's KV cache is repeated once per candidate, which at a real
        # model's size (SmolLM2: 30 layers, 384-token chat prompts, 8 candidates) is ~0.1 GB a row,
        # and 1.3 GB a row with 48 candidates and 600-token prompts (CookingWorld): the chunk holds
        # CHOICE_PAIRS prompt-candidate pairs, not a fixed number of rows.
        n = len(b["prompt_ids"])
        rows = choice_chunk_rows(int(b["action_mask"].sum(-1).max()) if n else 1)
        parts = [
            lm_ops.choice_logits(self.lm, {k: v[i : i + rows] for k, v in b.items()}, self.adapter.choice_scoring, temperature)[0]
            for i in range(0, n, rows)
        ]
        return torch.cat(parts, 0)

    @torch.no_grad()
    def choice_probs(self, observations: list[dict[str, Any]]) -> list[list[float]]:
        """Choose mode: the policy's probability of each admissible action, per observation.

        For a DQN policy this is the Boltzmann distribution over its Q-values.
        """
        b = self.encode(observations)
        probs = torch.softmax(self.choice_logits(b), -1)
        return [p[: len(o.get("actions", ()))].tolist() for p, o in zip(probs, observations, strict=True)]

    @torch.no_grad()
    def act(
        self,
        observations: list[dict[str, Any]],
        greedy: bool = True,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """Actions as text for a batch of ``{"text", "actions"}`` observations.

        Args:
            observations: Text observations as the envs produce them.
            greedy: Argmax (True) or sample at the policy's temperature.
            generator: Torch RNG for sampling (reproducible evaluation).
        """
        if not observations:
            return []
        b = self.encode(observations)
        if self.action_mode == "choose":
            for o in observations:
                if not o.get("actions"):
                    raise PolicyError(
                        "this policy was trained in choose mode and needs admissible actions "
                        "(the observation's `actions` list is empty)"
                    )
            logits = self.choice_logits(b)  # (B, K)
            if greedy:
                idx = logits.argmax(-1)
            else:
                idx = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
            return [self.codec.action_text(int(i), tuple(o["actions"])) for i, o in zip(idx, observations, strict=True)]
        rows = RowSampling.uniform(len(observations), self.temperature, greedy, generator)
        drawn = sample(
            self.lm,
            b["prompt_ids"],
            b["prompt_mask"],
            self.codec.eos_id,
            self.temperature,
            rows,
            self.adapter.max_new_tokens,
        )
        return [self.codec.decode_action(t) for t in drawn.tokens.numpy()]


class PolicyAgent:
    """A :class:`TextPolicy` behind the envs' agent API (``act(obs, info, env)``)."""

    def __init__(self, policy: TextPolicy, greedy: bool = True, seed: int = 0) -> None:
        self.policy = policy
        self.greedy = greedy
        self.generator = torch.Generator().manual_seed(seed)
        # Multi-turn chat: each env's (user turn, action) pairs so far this episode.
        self._history: dict[int, list[tuple[str, str]]] = {}

    def act(self, obs: dict[str, Any], info: dict[str, Any], env: Any) -> str:
        """One action for one observation (with the episode's earlier turns for a multi-turn policy)."""
        if not self.policy.codec.multi_turn:
            return self.policy.act([obs], greedy=self.greedy, generator=self.generator)[0]
        if getattr(env.unwrapped, "steps_taken", 0) == 0:  # a new episode
            self._history[id(env)] = []
        history = self._history.setdefault(id(env), [])
        user = user_turn(obs, info)
        shown = {**obs, "text": user, "history": tuple(history)}
        action = self.policy.act([shown], greedy=self.greedy, generator=self.generator)[0]
        history.append((user, action))
        return action
