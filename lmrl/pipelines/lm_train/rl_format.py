"""Demo rows in the prompt format an RL run acts in: SFT that warm-starts that very policy.

``lmrl data collect --model NAME`` (or ``--like CONFIG.yaml``) renders each
step as ``lmrl train`` with that policy section would: for a pretrained
instruct model, the chat template with the env's system message (choose mode
lists the admissible actions there), the observation as the user turn, the
assistant header; earlier turns too in multi-turn chat. The row's ``prompt``
and ``response`` are decoded from the very token ids the RL adapter
(:class:`lmrl.envs.adapter.TextCodec`) builds, and checked to tokenise back to
them, so that ``lmrl finetune`` (which tokenises prompt and response apart and
appends EOS) trains on exactly::

    prompt ids  = the policy's prompt ids for this observation
    response    = the action's ids as choose mode scores the candidate, or as
                  generate mode samples it, up to and including EOS

How the rows were rendered travels in the Parquet file's metadata (key
``lmrl``): the adapter settings, the env, and a fingerprint of the tokenizer.
``lmrl finetune`` refuses the file for a model with another tokenizer, and
writes those adapter settings into ``model/lmrl.json``, so ``lmrl eval`` of
the result prompts as the rows did.

Example:
    >>> fmt = RLFormat.from_config(zero_shot_config("smollm2-135m-instruct", "lmrl/Maze-v0"))  # doctest: +SKIP
    >>> prompt, response = fmt.render(0, obs, info, "north")  # doctest: +SKIP
    >>> response  # doctest: +SKIP
    'north'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmrl.envs.adapter import AdapterConfig, TextCodec, user_turn
from lmrl.errors import DataError, PolicyError, RunError
from lmrl.pipelines.config import PRESET_NAMES, RunConfig

#: The Parquet metadata key that records how the rows were rendered.
META_KEY = b"lmrl"
META_FORMAT = "lmrl-rl-prompts"


def policy_tokenizer(name_or_path: str):
    """The tokenizer of a catalog model, local directory or hub id (as ``lmrl train`` loads it).

    Raises:
        PolicyError: It cannot be loaded, or has no EOS token.
    """
    from transformers import AutoTokenizer

    from lmrl.policies.models import resolve

    path = resolve(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PolicyError(f"cannot load the tokenizer of `{name_or_path}`: {first}") from None
    if tok.eos_token_id is None:
        raise PolicyError(
            f"the tokenizer of `{name_or_path}` has no EOS token; lmrl needs one to end actions"
        )
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def tokenizer_fingerprint(tokenizer) -> str:
    """A short hash of what decides token ids: the vocabulary, EOS and the chat template."""
    text = json.dumps(
        [
            sorted(tokenizer.get_vocab().items()),
            tokenizer.eos_token,
            getattr(tokenizer, "chat_template", None),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class RLFormat:
    """Renders ``(observation, action)`` as the prompt and response an RL policy acts with.

    Attributes:
        codec: The RL adapter's codec (tokenizer + adapter settings).
        meta: What goes into the Parquet metadata (:data:`META_KEY`).
    """

    codec: TextCodec
    meta: dict[str, Any]
    _turns: dict[Any, list[list[int]]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: RunConfig) -> RLFormat:
        """The format of ``lmrl train`` with ``cfg`` (its ``env`` and ``policy`` sections).

        Raises:
            RunError: ``policy.model`` is a preset (its tokenizer exists only once
                ``lmrl train`` builds it; plain ``lmrl data collect`` already writes its format).
            PolicyError: The model's tokenizer cannot be loaded.
        """
        from lmrl.pipelines.policy_setup import adapter_config, resolve_auto

        if cfg.policy.model in PRESET_NAMES:
            raise RunError(
                f"policy.model `{cfg.policy.model}` is a preset: it has no tokenizer before `lmrl train` "
                "builds one, and its prompt is the plain format `lmrl data collect` writes without "
                "--model; drop --model/--like, or name a pretrained model"
            )
        resolved = resolve_auto(cfg)
        adapter = adapter_config(cfg)
        tokenizer = policy_tokenizer(cfg.policy.model)
        codec = TextCodec(tokenizer, adapter)
        meta = {
            "format": META_FORMAT,
            "model": cfg.policy.model,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "env_id": cfg.env.id,
            "env_kwargs": dict(cfg.env.kwargs),
            "chat": codec.chat,
            "adapter": adapter.to_dict(),
            "temperature": resolved.policy.temperature,
        }
        return cls(codec, meta)

    @property
    def lead(self) -> str:
        """Text before an action: none in a chat answer, a space after the plain ``Action:``."""
        return "" if self.codec.chat else " "

    def new_episode(self, key: Any) -> None:
        """Forgets the earlier turns of episode ``key`` (multi-turn chat)."""
        self._turns.pop(key, None)

    def action_ids(self, action: str, admissible: tuple[str, ...], encoded: dict) -> list[int]:
        """The ids the policy would produce for ``action`` (EOS last), as the adapter builds them.

        Raises:
            RunError: The policy could not produce it (not among its candidates, or
                longer than ``max_new_tokens``).
        """
        c = self.codec.config
        if c.action_mode == "choose":
            if action not in admissible[: c.max_candidates]:
                where = (
                    "not admissible"
                    if action not in admissible
                    else f"beyond policy.max_candidates ({c.max_candidates})"
                )
                raise RunError(
                    f"the action {action!r} is {where}, so a choose-mode policy cannot pick it; "
                    f"raise policy.max_candidates to {max(len(admissible), c.max_candidates)} or use generate mode"
                )
            return self.codec.action_ids(admissible.index(action), encoded)
        ids = list(
            self.codec.tokenizer(self.lead + action, add_special_tokens=False)["input_ids"]
        ) + [self.codec.eos_id]
        if len(ids) > c.max_new_tokens:
            raise RunError(
                f"the action {action!r} is {len(ids)} tokens with EOS, more than policy.max_new_tokens "
                f"({c.max_new_tokens}) lets a generate-mode policy sample; raise policy.max_new_tokens"
            )
        return ids

    def render(
        self, key: Any, obs: dict[str, Any], info: dict[str, Any], action: str
    ) -> tuple[str, str]:
        """``(prompt, response)`` for ``action`` taken on ``obs``; ``finetune`` adds the EOS.

        Args:
            key: The episode (multi-turn chat keeps each episode's turns); ``None``:
                no earlier turns, as the multi-agent envs encode.
            obs: The text observation.
            info: The info that came with it (multi-turn chat: ``info["message"]``).
            action: The action taken.

        Raises:
            RunError: The action cannot be produced by the policy, or the rendered text
                does not tokenise back to the policy's ids.
        """
        codec = self.codec
        multi = codec.multi_turn and key is not None
        text = user_turn(obs, info) if multi else str(obs["text"])
        admissible = tuple(str(a) for a in obs.get("actions") or ())
        turns = self._turns.setdefault(key, []) if multi else None
        encoded = codec.encode_observation({"text": text, "actions": admissible}, turns)
        prompt_ids = [int(t) for t in encoded["prompt_ids"][encoded["prompt_mask"] > 0]]
        ids = self.action_ids(action, admissible, encoded)
        if turns is not None:
            turns.append(codec.turn_ids(text, ids))
        body = ids[:-1] if ids and ids[-1] == codec.eos_id else ids
        prompt, response = self._decode(prompt_ids, "prompt"), self._decode(body, "response")
        return prompt, response

    def _decode(self, ids: list[int], what: str) -> str:
        tok = self.codec.tokenizer
        text = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        back = list(tok(text, add_special_tokens=False)["input_ids"]) if text else []
        if back != ids:
            p = self.codec.config.max_prompt_tokens
            raise RunError(
                f"the {what} ({len(ids)} tokens) does not tokenise back to the policy's ids once decoded "
                f"({len(back)} tokens), so SFT would train other tokens than RL acts with; if the "
                f"observation was cut to policy.max_prompt_tokens ({p}), raise it"
            )
        return text


def read_format(path: str | Path) -> dict[str, Any] | None:
    """The rendering recorded in a Parquet file by ``lmrl data collect --model/--like`` (else None).

    Raises:
        DataError: The metadata is there but not readable JSON.
    """
    import pyarrow.parquet as pq

    if Path(path).suffix.lower() != ".parquet":
        return None
    try:
        metadata = pq.read_schema(path).metadata or {}
    except OSError:
        return None  # not Parquet after all: the data pass names the problem
    raw = metadata.get(META_KEY)
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise DataError(
            f"{path}: its `lmrl` metadata is not JSON; collect the file again"
        ) from None
    return meta if isinstance(meta, dict) and meta.get("format") == META_FORMAT else None


def adapter_from_format(meta: dict[str, Any]) -> AdapterConfig:
    """The adapter settings a rendering used (for ``lmrl.json`` of the fine-tuned model)."""
    return AdapterConfig(**meta["adapter"])
