"""What a run config implies for its policy: the adapter (prompts, shapes, scoring) and LoRA.

Kept apart from :mod:`lmrl.pipelines.algos` (which imports RLlib) so that
evaluation, export and zero-shot runs can resolve the same settings cheaply.
``auto`` settings resolve by model kind (:func:`is_pretrained`).
"""

from __future__ import annotations

from typing import Any

from lmrl.envs.adapter import AdapterConfig
from lmrl.pipelines.config import RunConfig

#: Pretrained models' defaults where the policy section leaves them unset.
CHAT_PROMPT_TOKENS = 384
CHAT_CANDIDATE_TOKENS = 16


def is_pretrained(cfg: RunConfig) -> bool:
    """True for a pretrained instruct model: what the ``auto`` policy settings switch on for.

    A catalog name, a hub id, or a local directory whose tokenizer has a chat
    template. Presets and directories trained from them (no chat template)
    keep the settings they were tuned with.
    """
    import json
    from pathlib import Path

    from lmrl.pipelines.config import PRESET_NAMES
    from lmrl.policies.models import CATALOG

    name = cfg.policy.model
    if name in PRESET_NAMES:
        return False
    if name in CATALOG:
        return True
    path = Path(name).expanduser()
    if not path.is_dir():
        return True  # a hub id
    if (path / "chat_template.jinja").is_file():
        return True
    try:
        return bool(json.loads((path / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False


def env_doc(env_id: str) -> str:
    """The env's documentation (single- or multi-agent)."""
    from lmrl.envs.multiagent import is_multiagent, multiagent_env_info

    if is_multiagent(env_id):
        return multiagent_env_info(env_id).get("doc", "")
    import lmrl.envs

    return lmrl.envs.env_info(env_id).get("doc", "")


def adapter_config(cfg: RunConfig) -> AdapterConfig:
    """The adapter implied by the policy section: shapes, prompt rendering, candidate scoring.

    ``auto`` settings resolve by model kind. Pretrained models get chat prompts
    (a system message from the env's documentation; plain text when the
    tokenizer has no chat template), summed candidate log-probs, and longer
    prompt and candidate windows unless the config sets them; presets keep the
    plain ``{text}\nAction:`` prompt and length-normalised scores.
    """
    from lmrl.envs.adapter import env_instructions

    p = cfg.policy
    pretrained = is_pretrained(cfg)
    chat = p.chat is True or (p.chat == "auto" and pretrained)
    set_fields = p.model_fields_set
    return AdapterConfig(
        action_mode=p.action_mode,
        max_prompt_tokens=p.max_prompt_tokens
        if "max_prompt_tokens" in set_fields or not chat
        else CHAT_PROMPT_TOKENS,
        max_new_tokens=p.max_new_tokens,
        max_candidates=p.max_candidates,
        max_candidate_tokens=p.max_candidate_tokens
        if "max_candidate_tokens" in set_fields or not pretrained
        else CHAT_CANDIDATE_TOKENS,
        chat_system=env_instructions(env_doc(cfg.env.id)) if chat else None,
        choice_scoring=p.choice_scoring if p.choice_scoring != "auto" else ("sum" if pretrained else "mean"),
        choice_temperature=p.choice_temperature,
    )


def lora_settings(cfg: RunConfig) -> dict[str, Any] | None:
    """``LoraSettings`` as a dict when LoRA is on (``auto``: for pretrained models), else None."""
    lora = cfg.policy.lora
    on = lora.enabled is True or (lora.enabled == "auto" and is_pretrained(cfg))
    if not on:
        return None
    return {"r": lora.r, "alpha": lora.alpha, "target_modules": lora.target_modules}
