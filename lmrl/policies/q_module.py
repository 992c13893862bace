"""``LMQModule``: an LLM Q-function for RLlib's DQN, in choose mode.

Q(s, a_k) is read from the LM's last hidden state at the end of candidate
``a_k`` (its EOS token), after the prompt: one forward pass over
``prompt + candidate`` for every admissible action, a small MLP head on top.
Inadmissible slots get a very negative Q so ``argmax`` never picks them, and
states with no admissible action bootstrap from 0. A lagging target copy of
LM and head (``TargetNetworkAPI``) is built on the learner only.

Exploration is epsilon-greedy over the *admissible* actions, with epsilon
decaying linearly over env steps.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.dqn.default_dqn_rl_module import (
    QF_NEXT_PREDS,
    QF_PREDS,
    QF_TARGET_NEXT_PREDS,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.models.torch.torch_distributions import TorchCategorical
from torch import nn

from lmrl.policies.lm import load_lm
from lmrl.policies.lm_ops import candidate_features

#: Q-value given to inadmissible action slots.
MASKED_Q = -1e6


class LMQModule(TorchRLModule, QNetAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """DQN RLModule: one Q-value per admissible action, from LM hidden states.

    ``model_config`` keys: ``model_path``, ``q_head_hidden`` (MLP width,
    default 64), ``double_q`` (default True), ``epsilon`` as
    ``[start, end, decay_timesteps]`` (default ``[1.0, 0.05, 10000]``),
    ``init_seed``.
    """

    def setup(self) -> None:
        cfg = self.model_config
        self.lm, _ = load_lm(cfg["model_path"])
        hidden = int(self.lm.get_output_embeddings().weight.shape[1])
        width = int(cfg.get("q_head_hidden", 64))
        with torch.random.fork_rng():
            torch.manual_seed(int(cfg.get("init_seed", 0)))
            self.q_head = nn.Sequential(nn.Linear(hidden, width), nn.ReLU(), nn.Linear(width, 1))
        self.uses_double_q = bool(cfg.get("double_q", True))
        self.epsilon = tuple(cfg.get("epsilon", (1.0, 0.05, 10_000)))

    def _q(self, lm: nn.Module, head: nn.Module, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        q = head(candidate_features(lm, obs)).squeeze(-1)  # (B, K)
        valid = obs["action_mask"] > 0
        q = torch.where(valid, q, MASKED_Q)
        # A state with nothing admissible (terminal) bootstraps from 0, not from MASKED_Q.
        return torch.where(valid.any(-1, keepdim=True), q, torch.zeros_like(q))

    def compute_q_values(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {QF_PREDS: self._q(self.lm, self.q_head, batch[Columns.OBS])}

    def compute_advantage_distribution(self, batch: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("lmrl's LM Q-module is not distributional (num_atoms=1)")

    def get_exploration_action_dist_cls(self):
        return TorchCategorical

    def get_inference_action_dist_cls(self):
        return TorchCategorical

    def get_train_action_dist_cls(self):
        return TorchCategorical

    @torch.no_grad()
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: self.compute_q_values(batch)[QF_PREDS].argmax(-1)}

    @torch.no_grad()
    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs) -> dict[str, Any]:
        q = self.compute_q_values(batch)[QF_PREDS]  # (B, K)
        start, end, steps = self.epsilon
        eps = end + (start - end) * max(0.0, 1.0 - float(t) / float(steps))
        valid = batch[Columns.OBS]["action_mask"].float()
        valid = torch.where(valid.sum(-1, keepdim=True) > 0, valid, torch.ones_like(valid))
        random_actions = torch.multinomial(valid, 1)[:, 0]
        explore = torch.rand(q.shape[0]) < eps
        return {Columns.ACTIONS: torch.where(explore, random_actions, q.argmax(-1))}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        out: dict[str, Any] = {}
        if self.uses_double_q:
            both = {k: torch.cat([obs[k], next_obs[k]], 0) for k in obs}
            out[QF_PREDS], out[QF_NEXT_PREDS] = torch.chunk(self._q(self.lm, self.q_head, both), 2, 0)
        else:
            out[QF_PREDS] = self._q(self.lm, self.q_head, obs)
        out[QF_TARGET_NEXT_PREDS] = self.forward_target({Columns.OBS: next_obs})[QF_PREDS]
        return out

    # --- target network ------------------------------------------------------------
    def make_target_networks(self) -> None:
        self._target_lm = make_target_network(self.lm)
        self._target_q_head = make_target_network(self.q_head)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.lm, self._target_lm), (self.q_head, self._target_q_head)]

    def get_non_inference_attributes(self) -> list[str]:
        return ["_target_lm", "_target_q_head"]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            return {QF_PREDS: self._q(self._target_lm, self._target_q_head, batch[Columns.OBS])}
