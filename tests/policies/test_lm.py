"""LM loading: presets built offline, local directories, hub ids, clear errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmrl.errors import PolicyError
from lmrl.policies.lm import build_preset, load_lm, train_tokenizer


def test_tokenizer_trained_offline_round_trips(tmp_path):
    tok = train_tokenizer(["You are in a maze. The goal is 2 steps north.", "north", "south"] * 10, vocab_size=300)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "The goal is 3 steps west. \x07 ünïcode"
    ids = again(text, add_special_tokens=False)["input_ids"]
    assert again.decode(ids) == text  # byte-level: any text survives
    assert again.eos_token_id is not None and again.pad_token_id is not None
    assert again.pad_token_id != again.eos_token_id


def test_presets_are_seeded_and_dropout_free(tiny_model_dir):
    _, tok = load_lm(tiny_model_dir)
    a, b, c = build_preset("tiny", tok, seed=1), build_preset("tiny", tok, seed=1), build_preset("tiny", tok, seed=2)
    wa, wb, wc = (m.transformer.wte.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.resid_pdrop == a.config.attn_pdrop == a.config.embd_pdrop == 0.0


def test_local_directory_loads_with_dropout_off(tiny_model_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.resid_pdrop = 0.3  # a user's model with dropout on
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path)
    loaded, tok = load_lm(str(tmp_path))
    assert loaded.config.resid_pdrop == 0.0
    assert all(m.p == 0.0 for m in loaded.modules() if isinstance(m, torch.nn.Dropout))


def test_not_a_model_directory(tmp_path):
    with pytest.raises(PolicyError, match=r"is not a model directory \(no config.json there\)"):
        load_lm(str(tmp_path))


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolicyError, match=r"^cannot load policy.model `no-such-org/no-such-model`: .*Use a preset"):
        load_lm("no-such-org/no-such-model")


def test_preset_name_is_not_a_directory():
    with pytest.raises(PolicyError, match="is a preset, not a model directory"):
        load_lm("tiny")


def test_a_misspelt_catalog_name_is_suggested(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolicyError, match=r"Did you mean `smollm2-135m-instruct`\? Use a preset .* a catalog model"):
        load_lm("smollm2-135m-instrct")
