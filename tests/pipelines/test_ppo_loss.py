"""lmrl's PPO loss against a batch whose loss is worked out by hand.

The learner is the real one (``LMPPOLearner`` built from ``build_algorithm_config`` on the tiny
preset); only the batch and the forward-pass outputs are chosen here, so that every term of the
loss -- the clipped ratio, the value loss and its clip, the entropy bonus, the KL penalty to the
reference and the loss mask -- has a value that can be written down with ``math`` alone.

The loss, as lmrl computes it in choose mode (RLlib's ``PPOTorchLearner`` plus
``LMPPOLearner``'s KL term), is a mean over the rows the loss mask keeps::

    mean(-min(A * r, A * clip(r, 1 - eps, 1 + eps))
         + vf_loss_coeff * min((V - V_target)^2, vf_clip_param)
         - entropy_coeff * H)
    + kl_ref_coeff * mean(exp(ref - logp) - (ref - logp) - 1)

with ``r = exp(logp - old_logp)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from conftest import tiny_run_config
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from lmrl.pipelines.rl.builder import build_algorithm_config
from lmrl.pipelines.rl.learner import LMPPOLearner
from lmrl.policies.module import REF_LOGP

#: The candidate probabilities under the policy being trained, one row per step (3 candidates).
NEW_PROBS = [[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3]]
ACTIONS = [0, 1, 0, 0, 2]
#: Probability of the taken action under the sampling policy (the env runner's ACTION_LOGP).
OLD_PROB = [0.5, 0.5, 0.4, 0.9, 0.3]
#: Probability of the taken action under the frozen reference model.
REF_PROB = [0.5, 0.4, 0.5, 0.2, 0.25]
ADVANTAGES = [1.0, -2.0, -0.5, 5.0, 0.3]
VALUES = [0.5, -1.0, 0.0, 9.0, 2.0]
VALUE_TARGETS = [1.0, 1.0, 0.2, -3.0, 1.5]
#: Row 3 is a bootstrap row: masked out of every term.
MASK = [True, True, True, False, True]


@dataclass(frozen=True)
class Coeffs:
    """The loss's hyper-parameters, and switches for the hand computation's wrong variants."""

    clip: float = 0.2
    vf_coeff: float = 0.5
    vf_clip: float = 1.0
    entropy_coeff: float = 0.05
    kl_coeff: float = 0.1
    use_mask: bool = True


def loss_by_hand(c: Coeffs) -> float:
    """The PPO loss of the batch above, with plain Python floats."""
    rows = [i for i in range(len(ACTIONS)) if MASK[i] or not c.use_mask]
    per_row, kls = [], []
    for i in rows:
        p_new = NEW_PROBS[i][ACTIONS[i]]
        ratio = p_new / OLD_PROB[i]
        adv = ADVANTAGES[i]
        surrogate = min(adv * ratio, adv * min(max(ratio, 1 - c.clip), 1 + c.clip))
        vf = min((VALUES[i] - VALUE_TARGETS[i]) ** 2, c.vf_clip)
        entropy = -sum(p * math.log(p) for p in NEW_PROBS[i])
        per_row.append(-surrogate + c.vf_coeff * vf - c.entropy_coeff * entropy)
        delta = math.log(REF_PROB[i]) - math.log(p_new)
        kls.append(math.exp(delta) - delta - 1.0)
    return sum(per_row) / len(rows) + c.kl_coeff * sum(kls) / len(rows)


@pytest.fixture(scope="module")
def learner(tiny_model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> LMPPOLearner:
    """lmrl's PPO learner on the tiny preset, with the hyper-parameters of :class:`Coeffs`."""
    c = Coeffs()
    cfg = tiny_run_config(
        tiny_model_dir,
        str(tmp_path_factory.mktemp("ppo_loss")),
        algorithm={
            "clip_param": c.clip,
            "vf_loss_coeff": c.vf_coeff,
            "vf_clip_param": c.vf_clip,
            "entropy_coeff": c.entropy_coeff,
            "kl_ref_coeff": c.kl_coeff,
        },
    )
    return build_algorithm_config(cfg, tiny_model_dir).build_learner()


def _batch_and_forward(module: torch.nn.Module) -> tuple[dict, dict]:
    """The train batch and the forward pass's outputs that encode the rows above.

    The value head is set to read the first feature, so the "embeddings" carry the values.
    """
    n = len(ACTIONS)
    hidden = module.value_head.in_features
    with torch.no_grad():
        module.value_head.weight.zero_()
        module.value_head.weight[0, 0] = 1.0
        module.value_head.bias.zero_()
    embeddings = torch.zeros(n, hidden)  # (B, H)
    embeddings[:, 0] = torch.tensor(VALUES)
    old_logits = torch.log(
        torch.tensor(
            [[OLD_PROB[i] if k == a else 0.1 for k in range(3)] for i, a in enumerate(ACTIONS)]
        )
    )
    batch = {
        Columns.ACTIONS: torch.tensor(ACTIONS),  # (B,)
        Columns.ACTION_LOGP: torch.log(torch.tensor(OLD_PROB)),  # (B,)
        Columns.ACTION_DIST_INPUTS: old_logits,  # (B, K): only RLlib's KL term (off) reads it
        Postprocessing.ADVANTAGES: torch.tensor(ADVANTAGES),  # (B,)
        Postprocessing.VALUE_TARGETS: torch.tensor(VALUE_TARGETS),  # (B,)
        Columns.LOSS_MASK: torch.tensor(MASK),  # (B,)
    }
    fwd_out = {
        # (B, K): the softmax of these logits is NEW_PROBS
        Columns.ACTION_DIST_INPUTS: torch.log(torch.tensor(NEW_PROBS)),
        Columns.EMBEDDINGS: embeddings,
        REF_LOGP: torch.log(torch.tensor(REF_PROB)),  # (B,)
    }
    return batch, fwd_out


def _lmrl_loss(learner: LMPPOLearner) -> float:
    """lmrl's learner loss on the batch above (after checking the values it reads are VALUES)."""
    module = learner.module["default_policy"].unwrapped()
    assert module.action_mode == "choose" and module.critic
    batch, fwd_out = _batch_and_forward(module)
    with torch.no_grad():
        values = module.compute_values(batch, embeddings=fwd_out[Columns.EMBEDDINGS])
        loss = learner.compute_loss_for_module(
            module_id="default_policy",
            config=learner.config.get_config_for_module("default_policy"),
            batch=batch,
            fwd_out=fwd_out,
        )
    torch.testing.assert_close(values, torch.tensor(VALUES), rtol=0, atol=1e-6)
    return float(loss)


def test_ppo_loss_equals_the_loss_computed_by_hand(learner: LMPPOLearner) -> None:
    loss, expected = _lmrl_loss(learner), loss_by_hand(Coeffs())
    assert abs(loss - expected) < 1e-6, (loss, expected)


@pytest.mark.parametrize(
    "wrong",
    [
        Coeffs(clip=0.3),
        Coeffs(clip=1e9),  # no ratio clip
        Coeffs(vf_clip=1e9),  # no value-loss clip
        Coeffs(vf_coeff=1.0),
        Coeffs(entropy_coeff=0.0),
        Coeffs(kl_coeff=0.0),
        Coeffs(use_mask=False),
    ],
    ids=["clip", "no-ratio-clip", "no-vf-clip", "vf-coeff", "no-entropy", "no-kl", "no-mask"],
)
def test_the_loss_is_not_a_wrong_variant(learner: LMPPOLearner, wrong: Coeffs) -> None:
    """The batch is not degenerate: each term or clip, done wrong, gives a loss lmrl does not return."""
    assert abs(_lmrl_loss(learner) - loss_by_hand(wrong)) > 1e-3
