"""The one KV-cache sampler: the env runners and Serve draw the same ids with the same log-probs."""

from __future__ import annotations

import pytest
import torch
from conftest import random_walk_observations
from ray.rllib.core.columns import Columns

from lmrl.envs.adapter import AdapterConfig
from lmrl.policies import lm_ops
from lmrl.policies.decoding import DecodeRequest, SamplingParams, decode
from lmrl.policies.lm import load_lm
from lmrl.policies.module import LMPolicyModule
from lmrl.policies.sampler import RowSampling, sample
from lmrl.policies.text_policy import TextPolicy

ENV = "lmrl/GuessNumber-v0"
TEMPERATURE, MAX_NEW = 1.3, 6


@pytest.fixture(scope="module")
def policy_and_module(tiny_model_dir) -> tuple[TextPolicy, LMPolicyModule]:
    """A served policy and an env runner's module with the same weights, temperature and length."""
    lm, tok = load_lm(tiny_model_dir)
    policy = TextPolicy(
        lm, tok, AdapterConfig(action_mode="generate", max_new_tokens=MAX_NEW), TEMPERATURE
    )
    module = LMPolicyModule(
        observation_space=policy.codec.observation_space(),
        action_space=policy.codec.action_space(),
        model_config={"model_path": tiny_model_dir, "action_mode": "generate",
                      "max_new_tokens": MAX_NEW, "temperature": TEMPERATURE},
    )  # fmt: skip
    return policy, module


@pytest.mark.parametrize("seed", [0, 11, 12345])
def test_training_and_serving_draw_the_same_ids_and_logprobs(policy_and_module, seed):
    policy, module = policy_and_module
    obs = random_walk_observations(ENV, 6)[seed % 6]
    n = 4
    batch = policy.encode([obs] * n)
    torch.manual_seed(seed)  # the env runner draws from torch's default generator
    explored = module.forward_exploration({Columns.OBS: batch})
    (served,) = decode(policy, [DecodeRequest(obs["text"], (), SamplingParams(n=n, seed=seed))])
    tokens = torch.tensor([c.token_ids for c in served.completions])  # (n, T)
    assert torch.equal(tokens, explored[Columns.ACTIONS])
    assert [c.logprob for c in served.completions] == explored[Columns.ACTION_LOGP].tolist()
    # Different draws in the rows (the test would be empty otherwise), and TextPolicy.act agrees.
    assert len({tuple(t) for t in tokens.tolist()}) > 1
    acted = policy.act([obs] * n, greedy=False, generator=torch.Generator().manual_seed(seed))
    assert acted == [c.text for c in served.completions]


def test_per_row_limits_end_with_eos_and_zero_logprob(policy_and_module):
    policy, _ = policy_and_module
    batch = policy.encode(random_walk_observations(ENV, 3))
    eos = policy.codec.eos_id
    rows = RowSampling(
        greedy=torch.tensor([False, True, False]),
        temperature=torch.tensor([2.0, 1.0, 2.0]),
        top_p=torch.tensor([1.0, 1.0, 0.5]),
        generators=(torch.Generator().manual_seed(1), None, torch.Generator().manual_seed(2)),
    )
    drawn = sample(
        policy.lm,
        batch["prompt_ids"],
        batch["prompt_mask"],
        eos,
        TEMPERATURE,
        rows,
        torch.tensor([2, 5, 1]),
    )
    assert drawn.tokens.shape == drawn.token_logp.shape == (3, 5)
    past_limit = torch.tensor(
        [[False, False, True, True, True], [False] * 5, [False, True, True, True, True]]
    )
    after_eos = lm_ops.done_before(drawn.tokens, eos)
    assert (drawn.tokens[past_limit] == eos).all()
    assert (drawn.token_logp[past_limit | after_eos] == 0).all()
    # The recorded log-probs are the policy's (its temperature, no top_p): teacher forcing agrees.
    logits, _ = lm_ops.teacher_force(
        policy.lm, batch["prompt_ids"], batch["prompt_mask"], drawn.tokens, eos, TEMPERATURE
    )
    live = ~(past_limit | after_eos)
    torch.testing.assert_close(
        drawn.token_logp[live], lm_ops.token_logp(logits, drawn.tokens)[live], atol=1e-4, rtol=0
    )


def test_full_logits_view_scores_the_same_tokens(policy_and_module):
    policy, _ = policy_and_module
    batch = policy.encode(random_walk_observations(ENV, 4))
    args = (
        policy.lm,
        batch["prompt_ids"],
        batch["prompt_mask"],
        MAX_NEW,
        policy.codec.eos_id,
        TEMPERATURE,
    )
    tokens, logits, features = lm_ops.sample(*args, generator=torch.Generator().manual_seed(3))
    assert logits.shape[:2] == tokens.shape == (4, MAX_NEW) and features.shape[0] == 4
    rows = RowSampling.uniform(4, TEMPERATURE, generator=torch.Generator().manual_seed(3))
    drawn = sample(
        policy.lm,
        batch["prompt_ids"],
        batch["prompt_mask"],
        policy.codec.eos_id,
        TEMPERATURE,
        rows,
        MAX_NEW,
    )
    assert torch.equal(drawn.tokens, tokens)
    torch.testing.assert_close(
        drawn.token_logp, lm_ops.token_logp(logits, tokens), atol=1e-6, rtol=0
    )
