"""Exporting a trained policy as an HF-format directory.

The directory holds ``save_pretrained`` output of the LM and tokenizer (so
``transformers.AutoModelForCausalLM.from_pretrained`` loads it), the value
head's weights, and ``lmrl.json`` with the env id, action mode, prompt
format and package version. ``pretrain``/``finetune`` write the same format.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

import lmrl
from lmrl.envs.adapter import AdapterConfig
from lmrl.policies.lm import load_lm
from lmrl.policies.lora import LoraSettings, apply_lora, merged
from lmrl.policies.text_policy import META_FILE


def export_policy(
    module_state: dict[str, Any],
    init_model_path: str,
    out_dir: str | Path,
    *,
    env_id: str,
    adapter: AdapterConfig,
    temperature: float = 1.0,
    extra: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
) -> Path:
    """Writes an exported policy directory from an RLModule state dict.

    Args:
        module_state: ``LMPolicyModule`` state (keys ``lm.*`` and ``value_head.*``).
        init_model_path: The directory the module was built from (architecture + tokenizer).
        out_dir: Where to write.
        env_id: The env the policy was trained on.
        adapter: Action mode, shapes and prompt format.
        temperature: Sampling temperature used in training.
        extra: More fields for ``lmrl.json`` (e.g. training figures).
        lora: The ``LoraSettings`` the module trained with (its state then holds the
            adapter only); the export merges the adapter into the base weights.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lm, tokenizer = load_lm(init_model_path)
    if lora:
        lm = apply_lora(lm, LoraSettings(**lora))
    lm_state = {k[len("lm.") :]: torch.as_tensor(v) for k, v in module_state.items() if k.startswith("lm.")}
    missing, unexpected = lm.load_state_dict(lm_state, strict=False)
    if lora:  # only the adapter travels; the base comes from init_model_path
        missing = [k for k in missing if "lora_" in k]
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"export: state does not match the model (missing {missing}, unexpected {unexpected})")
    lm = merged(lm)
    lm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    heads = {}
    for head in ("value_head", "q_head"):
        state = {k[len(head) + 1 :]: torch.as_tensor(v) for k, v in module_state.items() if k.startswith(head + ".")}
        if state:
            torch.save(state, out / f"{head}.pt")
            heads[head] = f"{head}.pt"
    meta = {
        "format": "lmrl-policy",
        "lmrl_version": lmrl.__version__,
        "env_id": env_id,
        "action_mode": adapter.action_mode,
        "prompt_format": adapter.prompt_format,
        "adapter": adapter.to_dict(),
        "temperature": temperature,
        # "q": a DQN policy acts by argmax over its Q-head; "lm": by the LM's own scores.
        "policy_head": "q" if "q_head" in heads else "lm",
        "heads": heads,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "lora": lora,  # merged into the weights; recorded for the record
        **(extra or {}),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    return out
