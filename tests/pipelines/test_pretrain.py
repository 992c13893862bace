"""Warm-start pretraining on the random agent's play, and the preset-only rule."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_run_config

import lmrl.envs
from lmrl.envs.adapter import AdapterConfig
from lmrl.errors import ConfigError
from lmrl.pipelines.rl.loop import prepare_model
from lmrl.pipelines.rl.preset_pretrain import pretrain_causal_lm, random_play_sequences
from lmrl.policies.lm import load_lm
from lmrl.policies.text_policy import TextPolicy


def _readable_fraction(policy: TextPolicy, n: int = 64) -> float:
    env = lmrl.envs.make("lmrl/GuessNumber-v0")
    observations = [env.reset(seed=s)[0] for s in range(n)]
    actions = policy.act(observations, greedy=False, generator=torch.Generator().manual_seed(0))
    return sum(a.isdigit() and 1 <= int(a) <= 16 for a in actions) / n


def test_pretraining_teaches_the_action_format(tiny_model_dir):
    model, tok = load_lm(tiny_model_dir)
    adapter = AdapterConfig(action_mode="generate", max_new_tokens=3)
    before = _readable_fraction(TextPolicy(model, tok, adapter))
    seqs = random_play_sequences("lmrl/GuessNumber-v0", tok, episodes=100)
    assert all(s[-1] == tok.eos_token_id for s in seqs)
    losses = pretrain_causal_lm(model, seqs, tok.pad_token_id, steps=150, batch_size=32, lr=3e-3)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    after = _readable_fraction(TextPolicy(model, tok, adapter))
    assert before < 0.2 and after > 0.8, (before, after)


def test_pretrain_steps_only_for_presets(tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), policy={"pretrain_steps": 10})
    with pytest.raises(ConfigError, match=r"^policy.pretrain_steps \(10\) applies to presets only"):
        prepare_model(cfg, tmp_path)
