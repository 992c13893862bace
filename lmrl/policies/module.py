"""``LMPolicyModule``: an RLlib ``TorchRLModule`` whose actor is a causal LM.

Two action modes (see DESIGN.md):

* **choose** -- the env offers admissible actions; the policy is a softmax
  over their length-normalised log-likelihoods under the LM.
* **generate** -- the action is a token sequence sampled with the KV cache;
  training recomputes its log-prob by teacher forcing over the sampled ids.

A linear value head reads the LM's last hidden state at the prompt's last
token. The LM comes from a local HF directory (``model_config["model_path"]``)
written before the run, so every env runner and learner loads the same
initial weights. With ``kl_ref_coeff > 0`` the learner-side module keeps a
frozen copy of those initial weights as the KL reference.

The observation is the numeric dict of :mod:`lmrl.envs.adapter`.
"""

from __future__ import annotations

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
from ray.rllib.models.torch.torch_distributions import TorchCategorical, TorchMultiCategorical
from torch import nn

from lmrl.policies import lm_ops
from lmrl.policies.lm import disable_dropout, load_lm

#: Column with the reference model's log-prob of the taken action (KL-to-reference).
REF_LOGP = "ref_action_logp"
NEG = lm_ops.NEG


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
    """

    def setup(self) -> None:
        cfg = self.model_config
        self.action_mode: str = cfg["action_mode"]
        self.temperature: float = float(cfg.get("temperature", 1.0))
        self.max_new_tokens: int = int(cfg.get("max_new_tokens", 6))
        self.critic: bool = bool(cfg.get("critic", True))
        self.lm, tokenizer = load_lm(cfg["model_path"])
        self.eos_id: int = int(tokenizer.eos_token_id)
        hidden = int(self.lm.get_output_embeddings().weight.shape[1])
        with torch.random.fork_rng():
            torch.manual_seed(int(cfg.get("init_seed", 0)))
            width = int(cfg.get("value_head_hidden", 0))
            if width:
                self.value_head = nn.Sequential(nn.Linear(hidden, width), nn.Tanh(), nn.Linear(width, 1))
            else:
                self.value_head = nn.Linear(hidden, 1)
        # Kept out of the registered submodules: not trained, not checkpointed, not synced.
        self._ref: list[nn.Module] = []
        if cfg.get("kl_ref") and not self.inference_only:
            ref = disable_dropout(copy.deepcopy(self.lm)).eval()
            ref.requires_grad_(False)
            self._ref.append(ref)

    def _reference(self, device: torch.device) -> nn.Module:
        ref = self._ref[0]
        if next(ref.parameters()).device != device:
            ref.to(device)
        return ref

    # --- distributions ---------------------------------------------------------------
    def _dist_cls(self):
        if self.action_mode == "choose":
            return TorchCategorical
        vocab = int(self.lm.get_output_embeddings().weight.shape[0])
        return TorchMultiCategorical.get_partial_dist_cls(input_lens=[vocab] * self.max_new_tokens)

    def get_inference_action_dist_cls(self):
        return self._dist_cls()

    def get_exploration_action_dist_cls(self):
        return self._dist_cls()

    def get_train_action_dist_cls(self):
        return self._dist_cls()

    # --- forward passes ----------------------------------------------------------------
    def _choose_logits(self, lm, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        scores, feats = lm_ops.score_candidates(
            lm, obs["prompt_ids"], obs["prompt_mask"], obs["cand_ids"], obs["cand_mask"]
        )
        logits = torch.where(obs["action_mask"] > 0, scores / self.temperature, NEG)  # (B, K)
        return logits, feats

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, greedy=False)

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, greedy=True)

    @torch.no_grad()
    def _act(self, batch: dict[str, Any], greedy: bool) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        if self.action_mode == "choose":
            logits, _ = self._choose_logits(self.lm, obs)  # (B, K)
            dist = TorchCategorical.from_logits(logits)
            actions = logits.argmax(-1) if greedy else dist.sample()
            return {
                Columns.ACTIONS: actions,
                Columns.ACTION_LOGP: dist.logp(actions),
                Columns.ACTION_DIST_INPUTS: logits,
            }
        tokens, logits, _ = lm_ops.sample(
            self.lm,
            obs["prompt_ids"],
            obs["prompt_mask"],
            self.max_new_tokens,
            self.eos_id,
            temperature=self.temperature,
            greedy=greedy,
        )
        return {
            Columns.ACTIONS: tokens,  # (B, T)
            Columns.ACTION_LOGP: lm_ops.sequence_logp(logits, tokens),  # (B,)
            Columns.ACTION_DIST_INPUTS: logits.flatten(1),  # (B, T*V)
        }

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        out: dict[str, Any] = {}
        if self.action_mode == "choose":
            logits, feats = self._choose_logits(self.lm, obs)
            out[Columns.ACTION_DIST_INPUTS] = logits
            if self._ref:
                with torch.no_grad():
                    ref_logits, _ = self._choose_logits(self._reference(logits.device), obs)
                out[REF_LOGP] = TorchCategorical.from_logits(ref_logits).logp(batch[Columns.ACTIONS].long())
        else:
            tokens = batch[Columns.ACTIONS].long()
            logits, feats = lm_ops.teacher_force(
                self.lm, obs["prompt_ids"], obs["prompt_mask"], tokens, self.eos_id, self.temperature
            )
            out[Columns.ACTION_DIST_INPUTS] = logits.flatten(1)
            if self._ref:
                with torch.no_grad():
                    ref_logits, _ = lm_ops.teacher_force(
                        self._reference(logits.device), obs["prompt_ids"], obs["prompt_mask"], tokens, self.eos_id, self.temperature
                    )
                out[REF_LOGP] = lm_ops.sequence_logp(ref_logits, tokens)
        out[Columns.EMBEDDINGS] = feats
        return out

    # --- target network (APPO) ----------------------------------------------------------
    def make_target_networks(self) -> None:
        self._target_lm = make_target_network(self.lm)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.lm, self._target_lm)]

    def get_non_inference_attributes(self) -> list[str]:
        return ["_target_lm"]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        with torch.no_grad():
            if self.action_mode == "choose":
                logits, _ = self._choose_logits(self._target_lm, obs)
            else:
                logits, _ = lm_ops.teacher_force(
                    self._target_lm,
                    obs["prompt_ids"],
                    obs["prompt_mask"],
                    batch[Columns.ACTIONS].long(),
                    self.eos_id,
                    self.temperature,
                )
                logits = logits.flatten(1)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: logits}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """Value estimates (B,), from the train pass's features when given (0 without a critic)."""
        if not self.critic:
            ids = batch[Columns.OBS]["prompt_ids"]
            return torch.zeros(ids.shape[0], device=ids.device)
        if embeddings is None:
            obs = batch[Columns.OBS]
            embeddings = lm_ops.prompt_features(self.lm, obs["prompt_ids"], obs["prompt_mask"])
        return self.value_head(embeddings).squeeze(-1)
