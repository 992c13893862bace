"""The LM policy module: log-prob consistency, masking after EOS, dropout off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_walk_observations
from ray.rllib.core.columns import Columns

from lmrl.envs.adapter import AdapterConfig, TextCodec
from lmrl.policies import lm_ops
from lmrl.policies.lm import load_lm
from lmrl.policies.module import REF_LOGP, LMPolicyModule

_observations = random_walk_observations


def _module(model_dir: str, mode: str, inference_only: bool = False, **extra) -> tuple[LMPolicyModule, TextCodec]:
    _, tok = load_lm(model_dir)
    codec = TextCodec(tok, AdapterConfig(action_mode=mode))
    module = LMPolicyModule(
        observation_space=codec.observation_space(),
        action_space=codec.action_space(),
        inference_only=inference_only,
        model_config={"model_path": model_dir, "action_mode": mode, "max_new_tokens": 6, **extra},
    )
    return module, codec


def _batch(codec: TextCodec, observations: list[dict]) -> dict:
    enc = [codec.encode_observation(o) for o in observations]
    return {Columns.OBS: {k: torch.as_tensor(np.stack([e[k] for e in enc])) for k in enc[0]}}


@pytest.mark.parametrize(
    ("mode", "env_id"),
    [("choose", "lmrl/Maze-v0"), ("choose", "lmrl/CustomerSupport-v0"), ("generate", "lmrl/GuessNumber-v0")],
)
def test_sampling_logp_equals_learner_logp(tiny_model_dir, mode, env_id):
    module, codec = _module(tiny_model_dir, mode, temperature=0.7)
    batch = _batch(codec, _observations(env_id, 24))
    explored = module.forward_exploration(batch)
    batch[Columns.ACTIONS] = explored[Columns.ACTIONS]
    trained = module.forward_train(batch)  # train mode, as in the learner
    dist = module.get_train_action_dist_cls().from_logits(trained[Columns.ACTION_DIST_INPUTS])
    recomputed = dist.logp(batch[Columns.ACTIONS])
    assert recomputed.shape == explored[Columns.ACTION_LOGP].shape == (24,)
    assert torch.allclose(recomputed, explored[Columns.ACTION_LOGP], atol=1e-4)
    assert torch.isfinite(dist.entropy()).all()


def test_generate_masks_after_eos_identically(tiny_model_dir):
    module, codec = _module(tiny_model_dir, "generate")
    batch = _batch(codec, _observations("lmrl/GuessNumber-v0", 4))
    eos = module.eos_id
    # Hand-written actions: EOS at different places, junk after it.
    actions = torch.tensor([[5, eos, 7, 8, 9, 10], [eos, 3, 3, 3, 3, 3], [4, 4, 4, 4, 4, 4], [6, 6, eos, eos, 1, 2]])
    batch[Columns.ACTIONS] = actions
    tok_logp = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS][:, :6]  # (B, 2T): log-probs, then entropies
    after = lm_ops.done_before(actions, eos)
    assert after.tolist()[0] == [False, False, True, True, True, True]
    # Tokens after the first EOS are forced to EOS: junk there has ~zero probability,
    # and the EOS token itself has log-prob 0.
    assert (tok_logp[after & (actions != eos)] < -100).all()
    assert torch.allclose(tok_logp[after & (actions == eos)], torch.zeros(1))
    assert (tok_logp[~after] > -100).all()


def test_dropout_is_off_everywhere(tiny_model_dir):
    module, _ = _module(tiny_model_dir, "choose")
    module.train()
    dropouts = [m for m in module.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    cfg = module.lm.config
    assert cfg.resid_pdrop == cfg.embd_pdrop == cfg.attn_pdrop == 0.0


def test_reference_copy_is_frozen_and_not_a_parameter(tiny_model_dir):
    module, codec = _module(tiny_model_dir, "choose", kl_ref=True)
    names = [n for n, _ in module.named_parameters()]
    assert not any("_ref" in n for n in names)
    batch = _batch(codec, _observations("lmrl/Maze-v0", 8))
    batch[Columns.ACTIONS] = module.forward_exploration(batch)[Columns.ACTIONS]
    out = module.forward_train(batch)
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    # Before any update the policy is the reference: KL terms vanish.
    assert torch.allclose(out[REF_LOGP], dist.logp(batch[Columns.ACTIONS]), atol=1e-5)
    assert not out[REF_LOGP].requires_grad


def test_module_builds_on_all_zero_dummy_batch(tiny_model_dir):
    for mode in ("choose", "generate"):
        module, codec = _module(tiny_model_dir, mode)
        zeros = {k: torch.zeros((2, *s.shape), dtype=torch.int64) for k, s in codec.observation_space().items()}
        out = module.forward_exploration({Columns.OBS: zeros})
        assert torch.isfinite(out[Columns.ACTION_LOGP]).all()


@pytest.mark.parametrize("env_id", ["lmrl/Maze-v0", "lmrl/CustomerSupport-v0"])
def test_candidate_scores_equal_scoring_each_candidate_alone(tiny_model_dir, env_id):
    """The shared-prompt KV cache gives each candidate's own length-normalised log-likelihood."""
    lm, tok = load_lm(tiny_model_dir)
    codec = TextCodec(tok, AdapterConfig(action_mode="choose", max_prompt_tokens=128))
    obs = _batch(codec, _observations(env_id, 6))[Columns.OBS]
    scores, feats = lm_ops.score_candidates(lm, obs["prompt_ids"], obs["prompt_mask"], obs["cand_ids"], obs["cand_mask"])
    checked = 0
    with torch.no_grad():
        for i in range(len(scores)):
            prompt = obs["prompt_ids"][i][obs["prompt_mask"][i] > 0]
            hidden = lm(input_ids=prompt[None], output_hidden_states=True).hidden_states[-1][0, -1]
            torch.testing.assert_close(feats[i], hidden, rtol=1e-4, atol=1e-4)
            for j in np.flatnonzero(obs["action_mask"][i].numpy()):
                cand = obs["cand_ids"][i, j][obs["cand_mask"][i, j] > 0]
                logp = torch.log_softmax(lm(input_ids=torch.cat([prompt, cand])[None]).logits[0].float(), -1)
                expected = logp[len(prompt) - 1 : -1].gather(1, cand[:, None]).mean()
                torch.testing.assert_close(scores[i, j], expected, rtol=1e-4, atol=1e-4)
                checked += 1
    assert checked >= 12


def test_token_stats_equal_full_distributions_chunk_by_chunk():
    """Generate mode's learner statistics: the same values and gradients as full log-softmaxes."""
    torch.manual_seed(0)
    tokens = torch.randint(0, 50, (5, 3))
    ref = torch.randn(5, 3, 50, requires_grad=True)
    full_logp = torch.log_softmax(ref, -1)
    want_logp = full_logp.gather(2, tokens.unsqueeze(-1))[..., 0]
    want_entropy = torch.distributions.Categorical(logits=ref).entropy()
    (want_logp.sum() + 0.3 * want_entropy.sum()).backward()
    for chunk in (1, 2, 16):
        logits = ref.detach().clone().requires_grad_(True)
        logp, entropy = lm_ops.token_stats(logits, tokens, chunk=chunk)
        assert torch.allclose(logp, want_logp, atol=1e-6) and torch.allclose(entropy, want_entropy, atol=1e-6)
        (logp.sum() + 0.3 * entropy.sum()).backward()
        assert torch.allclose(logits.grad, ref.grad, atol=1e-6)


def test_mask_after_eos_keeps_gradients_where_the_sequence_runs():
    logits = torch.randn(2, 3, 7, requires_grad=True)
    done = torch.tensor([[False, True, True], [False, False, False]])
    masked = lm_ops.mask_after_eos(logits, done, eos_id=4)
    assert torch.equal(masked[done][:, 4], torch.zeros(2))
    assert (masked[done][:, [0, 1, 2, 3, 5, 6]] == lm_ops.NEG).all()
    assert torch.equal(masked[~done], logits[~done])
    masked.sum().backward()
    assert torch.equal(logits.grad, (~done).unsqueeze(-1).expand(2, 3, 7).float())


@pytest.mark.parametrize(("mode", "env_id"), [("choose", "lmrl/Maze-v0"), ("generate", "lmrl/GuessNumber-v0")])
def test_runner_values_equal_the_learner_values_and_gae_recomputes_only_bootstrap_rows(tiny_model_dir, mode, env_id):
    learner, codec = _module(tiny_model_dir, mode, runner_values=True, init_seed=3)
    runner, _ = _module(tiny_model_dir, mode, inference_only=True, runner_values=True)
    runner.set_state(learner.get_state(inference_only=True))  # the value head travels with the weights
    batch = _batch(codec, _observations(env_id, 10))
    explored = runner.forward_exploration(batch)
    assert Columns.VF_PREDS not in runner.forward_inference(batch)  # greedy acting computes no values
    full = learner.compute_values(batch)  # the learner's own prompt pass over every row
    torch.testing.assert_close(explored[Columns.VF_PREDS], full, rtol=1e-4, atol=1e-5)
    # As RLlib's GAE connector sees a batch: two chunks, each with an appended bootstrap row
    # (loss-masked) whose VF_PREDS is a copy of the row before; the first chunk ended terminally.
    vf = explored[Columns.VF_PREDS].clone()
    vf[4], vf[9] = vf[3], vf[8]
    batch[Columns.VF_PREDS] = vf
    batch[Columns.LOSS_MASK] = torch.tensor([1, 1, 1, 1, 0, 1, 1, 1, 1, 0], dtype=torch.bool)
    batch[Columns.TERMINATEDS] = torch.tensor([0, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    values = learner.compute_values(batch)
    torch.testing.assert_close(values[9], full[9], rtol=1e-4, atol=1e-5)  # bootstrap of the truncated chunk
    assert values[4] == vf[4]  # after a terminal step: never read by GAE, not recomputed
    keep = [0, 1, 2, 3, 5, 6, 7, 8]
    assert torch.equal(values[keep], vf[keep])  # the runner's values, as sent
