"""LoRA adapters on a policy's LM, through ``peft``.

Only the adapter matrices train (and the value head beside them), so the
learner's optimizer state, the weight sync to env runners and the
checkpoints hold megabytes instead of the whole model. The KL reference is
the same model with the adapter switched off (LoRA's B starts at zero, so at
the start the two are equal), never a second copy. Dropout is fixed at 0: it
would break the sampling/learning log-prob invariant.

Example:
    >>> lm, tok = load_lm("smollm2-135m-instruct")
    >>> lm = apply_lora(lm, LoraSettings(r=8, alpha=16, target_modules="all-linear"))
    >>> trainable_parameters(lm)
    2442240
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field

from torch import nn

from lmrl.errors import PolicyError, did_you_mean


@dataclass(frozen=True)
class LoraSettings:
    """Rank, scale and the modules to adapt (``"all-linear"``: every linear layer but the LM head)."""

    r: int = 8
    alpha: float = 16.0
    target_modules: list[str] | str = field(default="all-linear")

    def to_dict(self) -> dict:
        """Plain-dict form (RLlib model_config, ``lmrl.json``)."""
        return asdict(self)


def linear_module_names(lm: nn.Module) -> list[str]:
    """The distinct leaf names of the LM's linear layers (what ``target_modules`` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, nn.Linear)})


def check_targets(lm: nn.Module, settings: LoraSettings) -> None:
    """Raises PolicyError if ``target_modules`` names linear layers the LM does not have (listing those it has)."""
    if settings.target_modules == "all-linear":
        return
    have = linear_module_names(lm)
    unknown = [t for t in settings.target_modules if t not in have]
    if unknown:
        hint = did_you_mean(unknown[0], have)
        raise PolicyError(
            f"policy.lora.target_modules {unknown} match no linear layer of this "
            f"{type(lm).__name__}.{hint} It has: {', '.join(have)} (or use all-linear)"
        )


def apply_lora(lm: nn.Module, settings: LoraSettings) -> nn.Module:
    """Wraps ``lm`` in a ``peft`` LoRA model; only the adapter is trainable.

    Raises:
        PolicyError: If ``target_modules`` names modules the LM does not have
            (the message lists those it has).
    """
    from peft import LoraConfig, get_peft_model

    check_targets(lm, settings)
    targets = settings.target_modules if settings.target_modules == "all-linear" else list(settings.target_modules)
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, target_modules=targets, lora_dropout=0.0, bias="none"
    )
    return get_peft_model(lm, config)


def is_lora(lm: nn.Module) -> bool:
    """True if ``lm`` carries LoRA adapters."""
    return hasattr(lm, "disable_adapter") and hasattr(lm, "peft_config")


def base_model_context(lm: nn.Module) -> AbstractContextManager:
    """A context in which ``lm`` computes as its base model (adapter off); a no-op without LoRA."""
    return lm.disable_adapter() if is_lora(lm) else nullcontext()


def merged(lm: nn.Module) -> nn.Module:
    """The plain ``transformers`` model with the adapter merged into its weights."""
    return lm.merge_and_unload() if is_lora(lm) else lm


def trainable_parameters(module: nn.Module) -> int:
    """Number of parameters that require gradients."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
