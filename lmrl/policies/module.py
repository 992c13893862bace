"""``LMPolicyModule``: an RLlib ``TorchRLModule`` whose actor is a causal LM.

Two action modes (see DESIGN.md):

* **choose** -- the env offers admissible actions; the policy is a softmax
  over their length-normalised log-likelihoods under the LM.
* **generate** -- the action is a token sequence sampled with the KV cache;
  training recomputes its log-prob by teacher forcing over the sampled ids.

A linear value head reads the LM's last hidden state at the prompt's last
token (through a parameter-free LayerNorm for pretrained models, whose final
hidden states are far from unit scale). The LM comes from a local HF
directory (``model_config["model_path"]``) written before the run, so every
env runner and learner loads the same initial weights. With
``kl_ref_coeff > 0`` the learner-side module keeps a frozen copy of those
initial weights as the KL reference -- or, with LoRA, uses the same LM with
its adapter switched off.

With LoRA (``model_config["lora"]``) only the adapter and the value head are
trainable, and only they are in the module's state: what RLlib syncs to env
runners and writes into checkpoints.

The observation is the numeric dict of :mod:`lmrl.envs.adapter`.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import (
    TARGET_NETWORK_ACTION_DIST_INPUTS,
    InferenceOnlyAPI,
    TargetNetworkAPI,
)
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.models.torch.torch_distributions import TorchCategorical
from torch import nn

from lmrl.policies import lm_ops
from lmrl.policies.lm import disable_dropout, load_lm
from lmrl.policies.lora import LoraSettings, apply_lora, base_model_context
from lmrl.policies.sampler import RowSampling, sample

#: Column with the reference model's log-prob of the taken action (KL-to-reference).
REF_LOGP = "ref_action_logp"
#: Generate mode: the reference model's log-prob of each sampled token (B, T), for a per-token KL.
REF_TOKEN_LOGP = "ref_token_logp"
NEG = lm_ops.NEG
#: Rows per value pass when the learner's connectors estimate values for a whole train batch.
VALUE_CHUNK = 16


class SampledTokenLogps:
    """Generate mode's behaviour "distribution" on the env runners: per-token log-probs (B, T).

    Holds the log-prob of each sampled token under the sampling policy. It
    cannot be sampled from or compared by KL; the learner reads the log-probs
    directly (token-level ratios) or their sum (``ACTION_LOGP``).
    """

    def __init__(self, token_logp: torch.Tensor) -> None:
        self.token_logp = token_logp

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs: Any) -> SampledTokenLogps:
        return cls(logits)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """Sum over tokens (the sampled ``actions`` are the ones these log-probs belong to)."""
        return self.token_logp.sum(-1)

    def kl(self, other: Any) -> torch.Tensor:
        raise NotImplementedError(
            "generate mode sends per-token log-probs from the env runners, not full distributions: "
            "RLlib's KL loss (use_kl_loss) is not available; use algorithm.kl_ref_coeff"
        )


class TokenStats:
    """Generate mode's train-time distribution: per-token log-probs of the taken ids and entropies.

    ``forward_train`` returns (B, 2T): the log-prob of each sampled token
    under the current policy, then each position's entropy, computed from the
    (B, T, V) logits a chunk of rows at a time (:func:`lm_ops.token_stats`), so
    the learner's loss never holds full distributions for the whole minibatch.
    ``logp`` and ``entropy`` sum over tokens, as RLlib's multi-categorical did.
    """

    def __init__(self, stats: torch.Tensor) -> None:
        self.token_logp, self.token_entropy = stats.chunk(2, -1)  # (B, T) each

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs: Any) -> TokenStats:
        return cls(logits)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        """Sum over tokens (``actions`` are the sampled ids the stats were computed for)."""
        return self.token_logp.sum(-1)

    def entropy(self) -> torch.Tensor:
        return self.token_entropy.sum(-1)

    def kl(self, other: Any) -> torch.Tensor:
        raise NotImplementedError(
            "generate mode keeps per-token statistics, not full distributions: RLlib's KL loss "
            "(use_kl_loss) is not available; use algorithm.kl_ref_coeff"
        )


class LMPolicyModule(TorchRLModule, ValueFunctionAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Actor-critic RLModule around any ``AutoModelForCausalLM``.

    Implements ``TargetNetworkAPI`` (a lagging copy of the LM, built only on
    learners that ask for it) so APPO can use the same module as PPO.

    ``model_config`` keys:
        model_path: Local HF model directory (model + tokenizer).
        action_mode: ``"choose"`` or ``"generate"``.
        max_new_tokens: Generate mode: tokens per action.
        temperature: Sampling temperature (also used when recomputing log-probs).
        kl_ref: Keep a frozen reference copy for the KL penalty (learner only).
        value_head_hidden: 0 for a linear value head, else the MLP width.
        init_seed: Seed of the value head's initial weights.
        critic: False for critic-free PPO (``reinforce++``, ``grpo``): values are 0 and
            cost no forward pass; the value head stays untrained.
        lora: ``LoraSettings`` as a dict, or None to train every weight.
        choice_scoring: Choose mode: ``"mean"`` or ``"sum"`` of candidate token log-probs.
        choice_temperature: Choose mode: divides the scores (None: ``temperature``).
        value_norm: LayerNorm (no parameters) in front of the value head.
        autocast: ``"bf16"`` runs the LM's forward passes under bf16 autocast.
        gradient_checkpointing: Recompute the LM's activations in the backward pass (learner).
    """

    def setup(self) -> None:
        cfg = self.model_config
        self.action_mode: str = cfg["action_mode"]
        self.temperature: float = float(cfg.get("temperature", 1.0))
        self.max_new_tokens: int = int(cfg.get("max_new_tokens", 6))
        self.critic: bool = bool(cfg.get("critic", True))
        self.choice_scoring: str = cfg.get("choice_scoring") or "mean"
        self.choice_temperature: float = float(cfg.get("choice_temperature") or self.temperature)
        self.autocast: bool = cfg.get("autocast", "none") == "bf16"
        lm, tokenizer = load_lm(cfg["model_path"])
        self.lora: bool = bool(cfg.get("lora"))
        self.lm = apply_lora(lm, LoraSettings(**cfg["lora"])) if self.lora else lm
        self.checkpointing: bool = bool(cfg.get("gradient_checkpointing")) and not self.inference_only
        if self.checkpointing:
            self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.eos_id: int = int(tokenizer.eos_token_id)
        hidden = int(self.lm.get_output_embeddings().weight.shape[1])
        # Pretrained LMs' last hidden states are far from unit scale: a value head reading them
        # raw starts with values in the tens and vf_loss pinned at its clip.
        self.value_norm = nn.LayerNorm(hidden, elementwise_affine=False) if cfg.get("value_norm") else nn.Identity()
        # The env runners' modules (inference_only) act: they hold no reference copy and no target
        # network -- the LM's weights (and the adapter) only. With ``runner_values`` (PPO + GAE)
        # they also hold the value head (hidden + 1 weights) and return each step's value
        # (VF_PREDS) from the prompt features the acting pass computed anyway, so the learner's
        # GAE needs a prompt pass only for the bootstrap rows (compute_values).
        self.runner_values: bool = bool(cfg.get("runner_values")) and self.critic
        self.value_head: nn.Module | None = None
        if not self.inference_only or self.runner_values:
            with torch.random.fork_rng():
                torch.manual_seed(int(cfg.get("init_seed", 0)))
                width = int(cfg.get("value_head_hidden", 0))
                if width:
                    self.value_head = nn.Sequential(nn.Linear(hidden, width), nn.Tanh(), nn.Linear(width, 1))
                else:
                    self.value_head = nn.Linear(hidden, 1)
        # Kept out of the registered submodules: not trained, not checkpointed, not synced.
        self._ref: list[nn.Module] = []
        if cfg.get("kl_ref") and not self.inference_only and not self.lora:
            ref = disable_dropout(copy.deepcopy(self.lm)).eval()
            ref.requires_grad_(False)
            self._ref.append(ref)
        self._kl_ref: bool = bool(cfg.get("kl_ref")) and not self.inference_only

    def _amp(self) -> contextlib.AbstractContextManager:
        if not self.autocast:
            return contextlib.nullcontext()
        device = next(self.lm.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    @contextlib.contextmanager
    def _reference(self, device: torch.device):
        """The KL reference LM: the LoRA model with its adapter off, or the frozen copy."""
        if self.lora:
            with base_model_context(self.lm):
                yield self.lm
            return
        ref = self._ref[0]
        if next(ref.parameters()).device != device:
            ref.to(device)
        yield ref

    # --- state: with LoRA, only what trains ------------------------------------------------
    def _trainable_keys(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def get_state(self, components=None, *, not_components=None, inference_only: bool = False, **kwargs):
        state = super().get_state(components, not_components=not_components, inference_only=inference_only, **kwargs)
        if self.lora:  # the frozen base weights load from model_path on every runner and learner
            keep = self._trainable_keys()
            state = {k: v for k, v in state.items() if k in keep}
        return state

    def set_state(self, state) -> None:
        if not self.lora:
            return super().set_state(state)
        from ray.rllib.utils.torch_utils import convert_to_torch_tensor

        _, unexpected = self.load_state_dict(convert_to_torch_tensor(state), strict=False)
        missing = sorted(self._trainable_keys() - set(state))
        if unexpected or (self.inference_only and missing):
            raise ValueError(
                f"LoRA module state does not match (missing {missing[:3]}, unexpected {list(unexpected)[:3]}): "
                "the adapter settings differ between the state and this module"
            )

    # --- distributions ---------------------------------------------------------------
    def _dist_cls(self):
        return TorchCategorical if self.action_mode == "choose" else TokenStats

    # Generate mode: the env runners send the log-prob of each sampled token (B, T), not the
    # full (B, T*V) logits -- at a real vocabulary that is 24 bytes per step instead of ~1 MB.
    # Their "distribution" is never sampled (the module returns the actions itself) and PPO
    # reads from it only for RLlib's KL term, which lmrl does not use (use_kl_loss=False).
    def get_inference_action_dist_cls(self):
        return self._dist_cls() if self.action_mode == "choose" else SampledTokenLogps

    def get_exploration_action_dist_cls(self):
        return self._dist_cls() if self.action_mode == "choose" else SampledTokenLogps

    def get_train_action_dist_cls(self):
        return self._dist_cls()

    # --- forward passes ----------------------------------------------------------------
    def _choose_logits(self, lm, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # Gradient checkpointing cannot keep a KV cache: score each candidate with its prompt.
        shared = not (self.checkpointing and self.training and torch.is_grad_enabled())
        with self._amp():
            logits, feats = lm_ops.choice_logits(
                lm, obs, self.choice_scoring, self.choice_temperature, shared_prompt=shared
            )
        return logits.float(), feats.float()  # (B, K), (B, H)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, greedy=False)

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, greedy=True)

    @torch.no_grad()
    def _act(self, batch: dict[str, Any], greedy: bool) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        with_values = self.runner_values and not greedy  # exploration feeds training; inference does not
        if self.action_mode == "choose":
            logits, feats = self._choose_logits(self.lm, obs)  # (B, K), (B, H)
            dist = TorchCategorical.from_logits(logits)
            actions = logits.argmax(-1) if greedy else dist.sample()
            out = {
                Columns.ACTIONS: actions,
                Columns.ACTION_LOGP: dist.logp(actions),
                Columns.ACTION_DIST_INPUTS: logits,
            }
        else:
            rows = RowSampling.uniform(len(obs["prompt_ids"]), self.temperature, greedy)
            with self._amp():
                drawn = sample(
                    self.lm,
                    obs["prompt_ids"],
                    obs["prompt_mask"],
                    self.eos_id,
                    self.temperature,
                    rows,
                    self.max_new_tokens,
                    features=with_values,
                )
            token_logp = drawn.token_logp  # (B, T), 0 after the first EOS
            feats = drawn.features
            out = {
                Columns.ACTIONS: drawn.tokens,  # (B, T)
                Columns.ACTION_LOGP: token_logp.sum(-1),  # (B,)
                Columns.ACTION_DIST_INPUTS: token_logp,  # (B, T): what the token-level ratios need
            }
        if with_values:
            out[Columns.VF_PREDS] = self._value(feats.float())
        return out

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        out: dict[str, Any] = {}
        if self.action_mode == "choose":
            logits, feats = self._choose_logits(self.lm, obs)
            out[Columns.ACTION_DIST_INPUTS] = logits
            if self._kl_ref:
                with torch.no_grad(), self._reference(logits.device) as ref:
                    ref_logits, _ = self._choose_logits(ref, obs)
                out[REF_LOGP] = TorchCategorical.from_logits(ref_logits).logp(batch[Columns.ACTIONS].long())
        else:
            tokens = batch[Columns.ACTIONS].long()
            with self._amp():
                logits, feats = lm_ops.teacher_force(
                    self.lm, obs["prompt_ids"], obs["prompt_mask"], tokens, self.eos_id, self.temperature
                )
            feats = feats.float()
            out[Columns.ACTION_DIST_INPUTS] = torch.cat(lm_ops.token_stats(logits, tokens), -1)  # (B, 2T)
            if self._kl_ref:
                with torch.no_grad(), self._reference(logits.device) as ref, self._amp():
                    ref_logits, _ = lm_ops.teacher_force(
                        ref, obs["prompt_ids"], obs["prompt_mask"], tokens, self.eos_id, self.temperature
                    )
                ref_token_logp = lm_ops.token_logp(ref_logits.float(), tokens)  # (B, T)
                out[REF_TOKEN_LOGP] = ref_token_logp
                out[REF_LOGP] = ref_token_logp.sum(-1)
        out[Columns.EMBEDDINGS] = feats
        return out

    # --- target network (APPO) ----------------------------------------------------------
    def make_target_networks(self) -> None:
        self._target_lm = make_target_network(self.lm)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.lm, self._target_lm)]

    def get_non_inference_attributes(self) -> list[str]:
        return ["_target_lm"] if self.runner_values else ["_target_lm", "value_head"]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        with torch.no_grad():
            if self.action_mode == "choose":
                logits, _ = self._choose_logits(self._target_lm, obs)
            else:
                tokens = batch[Columns.ACTIONS].long()
                logits, _ = lm_ops.teacher_force(
                    self._target_lm, obs["prompt_ids"], obs["prompt_mask"], tokens, self.eos_id, self.temperature
                )
                logits = torch.cat(lm_ops.token_stats(logits, tokens), -1)  # (B, 2T)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: logits}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """Value estimates (B,), from the train pass's features when given (0 without a critic).

        The loss passes ``embeddings`` (the train pass's prompt features) and its
        gradient flows into the value head. Without them this is an estimate for
        the learner connectors' GAE over the whole train batch: it runs without
        autograd, :data:`VALUE_CHUNK` rows at a time. (With autograd on, RLlib's
        GAE connector kept every layer's activations for the batch: 18 GiB for
        40 SmolLM2 prompts of 384 tokens.)
        """
        if not self.critic:
            ids = batch[Columns.OBS]["prompt_ids"]
            return torch.zeros(ids.shape[0], device=ids.device)
        if self.value_head is None:
            raise RuntimeError("an inference-only module (an env runner's) has no value head; values come from the learner")
        if embeddings is not None:
            return self._value(embeddings)
        obs = batch[Columns.OBS]
        ids, mask = obs["prompt_ids"], obs["prompt_mask"]
        values = torch.zeros(ids.shape[0], device=ids.device)
        need = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
        if Columns.VF_PREDS in batch and Columns.LOSS_MASK in batch:  # sent by runner_values runners
            # The runner's values for the steps it acted on; a prompt pass only for each chunk's
            # appended bootstrap row (loss-masked), and not even there after a terminal step.
            values = batch[Columns.VF_PREDS].to(values).clone()
            terminated = batch[Columns.TERMINATEDS].bool()
            after_terminal = torch.cat([terminated.new_zeros(1), terminated[:-1]])
            need = ~batch[Columns.LOSS_MASK].bool() & ~after_terminal
        rows = need.nonzero().squeeze(-1)
        with torch.no_grad(), self._amp():
            for i in range(0, len(rows), VALUE_CHUNK):
                at = rows[i : i + VALUE_CHUNK]
                values[at] = self._value(lm_ops.prompt_features(self.lm, ids[at], mask[at]).float())
        return values

    def _value(self, features: torch.Tensor) -> torch.Tensor:
        """(B,) the value head's estimate from (B, H) prompt features."""
        return self.value_head(self.value_norm(features)).squeeze(-1)
