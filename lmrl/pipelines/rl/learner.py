"""The PPO learner lmrl trains with, and the learner connectors it adds to RLlib's pipeline.

* :class:`DropMaskedRows` -- after GAE, drops the loss-masked bootstrap rows
  RLlib appends to every episode, and standardises the advantages over the
  rows that train.
* :class:`GroupAdvantages` -- GRPO: each episode's return standardised within
  its group of episodes that started alike (:data:`GROUP_INFO`).
* :class:`LMPPOLearner` -- RLlib's PPO learner plus these connectors, the
  KL penalty to the reference weights, and token-level importance ratios in
  generate mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.algorithms.ppo.ppo import LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.torch_utils import explained_variance

from lmrl.policies import lm_ops
from lmrl.policies.module import REF_LOGP, REF_TOKEN_LOGP

#: Info key (at reset) naming an episode's GRPO group: episodes with the same key start alike.
GROUP_INFO = "lmrl_group"


class DropMaskedRows(ConnectorV2):
    """Learner connector: drops the rows that the loss mask excludes, after GAE.

    RLlib's PPO appends one artificial timestep to every episode so the value
    net can bootstrap, and masks it out of the loss. Once GAE has used it, the
    row only costs compute: every epoch would run the LM forward and backward
    on it for nothing. For one-step episodes (Arithmetic, SentimentSteer, each
    seat of Referential) that is half of every minibatch. The loss is a mean
    over unmasked rows, so dropping them leaves its value unchanged.

    RLlib standardises the advantages over all rows, the bootstrap rows
    included; they are standardised again here over the rows that train, so
    the policy gradient's baseline is the mean over real steps only.
    """

    def __init__(self, *args: Any, standardize: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.standardize = standardize

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        for mid, module_batch in list(batch.items()):
            mask = module_batch.get(Columns.LOSS_MASK)
            if mask is None:
                continue
            keep = torch.as_tensor(mask).bool()
            if bool(keep.all()):
                continue
            n, idx = keep.shape[0], torch.nonzero(keep).squeeze(-1)

            def take(x, n=n, idx=idx):
                if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == n:
                    return x[idx.to(x.device)]
                if isinstance(x, np.ndarray) and x.ndim > 0 and x.shape[0] == n:
                    return x[idx.cpu().numpy()]
                return x

            batch[mid] = kept = tree.map_structure(take, module_batch)
            adv = kept.get(Postprocessing.ADVANTAGES)
            if self.standardize and adv is not None and len(adv) > 1:
                std = adv.std(correction=0) if isinstance(adv, torch.Tensor) else adv.std()
                kept[Postprocessing.ADVANTAGES] = (adv - adv.mean()) / max(1e-4, float(std))
        return batch


class GroupAdvantages(ConnectorV2):
    """Learner connector (GRPO): each episode's return, normalised within its group.

    Runs after RLlib's GAE step and replaces its advantages. Episodes of one
    group (same :data:`GROUP_INFO` key) started from the same seed; every row
    of an episode gets ``(R - mean(R_group)) / (std(R_group) + 1e-4)``, as in
    GRPO (DeepSeekMath; TRL's ``GRPOTrainer``). An episode whose group has no
    other member in the batch gets 0.
    """

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        eps = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        returns = np.array([float(np.sum(e.get_rewards())) for e in eps])
        keys = [e.get_infos(0).get(GROUP_INFO) if e.t_started == 0 else None for e in eps]
        by_key: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key is not None:
                by_key.setdefault(key, []).append(i)
        per_episode = np.zeros(len(eps))
        for members in by_key.values():
            if len(members) > 1:
                r = returns[members]
                per_episode[members] = (r - r.mean()) / (r.std(ddof=1) + 1e-4)
        rows = np.repeat(per_episode, [len(e) for e in eps])
        for mid, module_batch in batch.items():
            adv = module_batch.get(Postprocessing.ADVANTAGES)
            if adv is None:
                continue
            if len(rows) != len(adv):
                raise RuntimeError(f"GRPO: {len(rows)} episode rows for {len(adv)} batch rows of module {mid}")
            module_batch[Postprocessing.ADVANTAGES] = (
                torch.as_tensor(rows, dtype=adv.dtype, device=adv.device) if isinstance(adv, torch.Tensor) else rows
            )
        return batch


def _live_tokens(module, batch) -> torch.Tensor:
    """(B, T) 1.0 for each generated token up to and including the first EOS, in rows the loss keeps."""
    live = (~lm_ops.done_before(batch[Columns.ACTIONS].long(), module.eos_id)).float()
    rows = batch.get(Columns.LOSS_MASK)
    return live if rows is None else live * rows.float().unsqueeze(-1)


class LMPPOLearner(PPOTorchLearner):
    """PPO with an optional KL penalty to the frozen reference policy.

    The penalty uses the non-negative k3 estimator of KL(pi || pi_ref) on the
    sampled actions, as in GRPO/TRL (http://joschu.net/blog/kl-approx.html):
    ``exp(ref - logp) - (ref - logp) - 1``, on each action's log-prob (choose
    mode, and generate mode with sequence ratios) or on each generated token,
    averaged over tokens (generate mode with token ratios, as TRL's GRPO). The learner batch leaves out the
    loss-masked bootstrap rows (:class:`DropMaskedRows`).
    """

    def build(self) -> None:
        super().build()
        if self._learner_connector is not None and self.config.add_default_connectors_to_learner_pipeline:
            grpo = self.config.learner_config_dict.get("advantage_estimator") == "grpo"
            if grpo:
                self._learner_connector.append(GroupAdvantages())
            self._learner_connector.append(DropMaskedRows(standardize=not grpo))

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        token_level = (
            config.learner_config_dict.get("importance_sampling_level") == "token"
            and getattr(module, "action_mode", None) == "generate"
        )
        if token_level:
            loss = self._token_level_loss(module_id, module, config, batch, fwd_out)
        else:
            loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        coeff = float(config.learner_config_dict.get("kl_ref_coeff", 0.0))
        if coeff > 0.0 and token_level and REF_TOKEN_LOGP in fwd_out:
            mean_kl = self._token_kl(module, batch, fwd_out)
            loss = loss + coeff * mean_kl
            self.metrics.log_value((module_id, "kl_ref"), mean_kl.detach(), window=1)
        elif coeff > 0.0 and REF_LOGP in fwd_out:
            dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
            logp = dist.logp(batch[Columns.ACTIONS])
            delta = fwd_out[REF_LOGP] - logp
            kl = torch.exp(delta) - delta - 1.0
            mask = batch.get(Columns.LOSS_MASK)
            mean_kl = kl[mask].mean() if mask is not None else kl.mean()
            loss = loss + coeff * mean_kl
            self.metrics.log_value((module_id, "kl_ref"), mean_kl.detach(), window=1)
        return loss

    def _token_kl(self, module, batch, fwd_out) -> torch.Tensor:
        """k3 KL to the reference per generated token, averaged over the live tokens of the batch.

        With token-level ratios the penalty is per token too, as in TRL's GRPO
        (``beta * mean_t k3_t``). The k3 of a whole answer's summed log-ratio
        grows exponentially with its length: 16 tokens 0.1 nats from the
        reference each give 2.35 where the per-token mean is 0.005.
        """
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        live = _live_tokens(module, batch)
        delta = fwd_out[REF_TOKEN_LOGP] - dist.token_logp
        kl = torch.exp(delta) - delta - 1.0
        return (kl * live).sum() / live.sum().clamp(min=1.0)

    def _token_level_loss(self, module_id, module, config, batch, fwd_out):
        """PPO's loss with one importance ratio per generated token (generate mode).

        RLlib's PPO takes the ratio of whole-sequence likelihoods, which moves
        T times faster than a token's and so reaches the clip range sooner.
        Here each token up to the first EOS has its own clipped ratio, and the
        surrogate is averaged over all those tokens in the batch, as in TRL's
        GRPO and DAPO. The value and entropy terms are RLlib's.
        """
        # Per-token log-probs of the sampled ids and entropies (B, T) each: module.TokenStats.
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        live = _live_tokens(module, batch)
        rows = batch.get(Columns.LOSS_MASK)
        # The env runners sent each sampled token's log-prob (B, T) as ACTION_DIST_INPUTS.
        old_logp = batch[Columns.ACTION_DIST_INPUTS].float()
        ratio = torch.exp(dist.token_logp - old_logp)
        adv = batch[Postprocessing.ADVANTAGES].unsqueeze(-1)
        surrogate = torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - config.clip_param, 1 + config.clip_param))
        policy_loss = -(surrogate * live).sum() / live.sum().clamp(min=1.0)

        def row_mean(x):
            return x[rows].mean() if rows is not None else x.mean()

        entropy = row_mean(dist.entropy())
        zero = torch.tensor(0.0, device=policy_loss.device)
        values, vf_loss, vf_unclipped = zero, zero, zero
        if config.use_critic:
            values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
            squared = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
            vf_loss, vf_unclipped = row_mean(torch.clamp(squared, 0, config.vf_clip_param)), row_mean(squared)
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: policy_loss,
                VF_LOSS_KEY: vf_loss,
                "vf_loss_unclipped": vf_unclipped,
                LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY: explained_variance(batch[Postprocessing.VALUE_TARGETS], values)
                if config.use_critic
                else zero,
                ENTROPY_KEY: entropy,
                "clipped_token_share": ((ratio - 1.0).abs() > config.clip_param).float().mul(live).sum()
                / live.sum().clamp(min=1.0),
            },
            key=module_id,
            window=1,
        )
        return policy_loss + config.vf_loss_coeff * vf_loss - entropy_coeff * entropy
