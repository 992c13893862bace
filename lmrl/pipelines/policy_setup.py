"""What a run config implies for its policy: the adapter (prompts, shapes, scoring) and LoRA.

Kept apart from :mod:`lmrl.pipelines.rl.builder` (which imports RLlib) so that
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
    """The env's documentation (any kind: the one catalog knows them all)."""
    import lmrl.envs

    return lmrl.envs.env_info(env_id).get("doc", "")


def is_dialogue(env_id: str) -> bool:
    """True for envs whose episodes are conversations (``TextEnv.dialogue``): multi-turn chat by default.

    Measured with SmolLM2-135M-Instruct zero-shot on lmrl/Maze-v0 (whose
    observation describes the whole state each step), keeping the earlier turns
    in the prompt took greedy success from 18.8% to 6.2% over 16 episodes
    (``benchmarks/probes/zero_shot_screen.py``), so state-describing envs stay single-turn.
    """
    import lmrl.envs

    return bool(lmrl.envs.env_info(env_id).get("dialogue", False))


#: ``algorithm.lr`` for pretrained models when the config leaves it unset: the presets'
#: 1e-3 moved SmolLM2 + LoRA to a KL of 28 nats from its base in one 16-step PPO iteration.
PRETRAINED_LR = 1e-4


def resolve_auto(cfg: RunConfig) -> RunConfig:
    """The config with every ``auto`` policy setting, and the defaults that depend on the model, made explicit.

    Pretrained instruct models (:func:`is_pretrained`) get chat prompts (multi-turn in
    dialogue envs, :func:`is_dialogue`), summed
    candidate scores, LoRA, ``max_prompt_tokens`` 384, ``max_candidate_tokens``
    16 and ``algorithm.lr`` 1e-4 unless the config sets them; presets keep the
    plain ``{text}\\nAction:`` prompt, length-normalised scores, full training
    and 1e-3. ``lmrl train`` saves the resolved config, so a resumed run (whose
    ``config.yaml`` sets every key) keeps exactly these values. Idempotent.
    """
    p, a = cfg.policy, cfg.algorithm
    pretrained = is_pretrained(cfg)
    chat = pretrained if p.chat == "auto" else p.chat
    policy: dict[str, Any] = {
        "chat": chat,
        "multi_turn": bool(chat and is_dialogue(cfg.env.id)) if p.multi_turn == "auto" else p.multi_turn,
        "choice_scoring": ("sum" if pretrained else "mean") if p.choice_scoring == "auto" else p.choice_scoring,
        # DQN's Q-module trains its LM whole (no LoRA path).
        "lora": {
            **p.lora.model_dump(),
            "enabled": (pretrained and a.name != "DQN") if p.lora.enabled == "auto" else p.lora.enabled,
        },
    }
    if pretrained and chat and "max_prompt_tokens" not in p.model_fields_set:
        policy["max_prompt_tokens"] = CHAT_PROMPT_TOKENS
    if pretrained and "max_candidate_tokens" not in p.model_fields_set:
        policy["max_candidate_tokens"] = CHAT_CANDIDATE_TOKENS
    data = cfg.model_dump(by_alias=True, exclude_unset=True)
    data["policy"] = {**data.get("policy", {}), **policy}
    if pretrained and "lr" not in a.model_fields_set:
        data["algorithm"] = {**data.get("algorithm", {}), "lr": PRETRAINED_LR}
    return RunConfig.model_validate(data)


def chat_system_message(env_id: str, env_kwargs: dict[str, Any] | None = None) -> str:
    """The chat system message for an env: its own agent instructions, else built from its docstring.

    Suite adapters, whose docstrings are written for developers (seeds, folds),
    give agent-facing text (``TextEnv.agent_instructions``); lmrl's own envs
    describe the task in their docstrings (:func:`lmrl.envs.adapter.env_instructions`).
    """
    import lmrl.envs
    from lmrl.envs.adapter import env_instructions

    own = lmrl.envs.agent_instructions(env_id, env_kwargs)
    return own if own is not None else env_instructions(env_doc(env_id))


def adapter_config(cfg: RunConfig) -> AdapterConfig:
    """The adapter implied by the policy section: shapes, prompt rendering, candidate scoring.

    ``auto`` settings resolve first (:func:`resolve_auto`). With chat prompts the
    system message comes from the env's documentation; the codec falls back to
    the plain prompt when the tokenizer has no chat template.
    """
    p = resolve_auto(cfg).policy
    return AdapterConfig(
        action_mode=p.action_mode,
        max_prompt_tokens=p.max_prompt_tokens,
        max_new_tokens=p.max_new_tokens,
        max_candidates=p.max_candidates,
        max_candidate_tokens=p.max_candidate_tokens,
        chat_system=chat_system_message(cfg.env.id, dict(cfg.env.kwargs)) if p.chat else None,
        choice_scoring=p.choice_scoring,
        choice_temperature=p.choice_temperature,
        multi_turn=bool(p.chat and p.multi_turn),
    )


def lora_settings(cfg: RunConfig) -> dict[str, Any] | None:
    """``LoraSettings`` as a dict when LoRA is on (``auto``: for pretrained models), else None."""
    lora = resolve_auto(cfg).policy.lora
    if not lora.enabled:
        return None
    return {"r": lora.r, "alpha": lora.alpha, "target_modules": lora.target_modules}


def learning_rate(cfg: RunConfig) -> float:
    """``algorithm.lr`` as set, else 1e-3 for presets and :data:`PRETRAINED_LR` for pretrained models."""
    return resolve_auto(cfg).algorithm.lr
