"""The policy on the architectures users bring: Llama, Qwen2, GPT-NeoX and GPT-2.

Randomly initialised tiny configs (transformers config classes, no downloads)
with a tokenizer trained offline. For each: sampling/learning log-probs match,
shared-prompt choose scoring equals scoring alone, LoRA on and off, and save
-> load -> the same greedy actions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_walk_observations
from ray.rllib.core.columns import Columns

import lmrl.envs
from lmrl.envs.adapter import AdapterConfig, TextCodec, env_instructions
from lmrl.errors import PolicyError
from lmrl.pipelines.export import export_policy
from lmrl.policies import lm_ops
from lmrl.policies.lm import load_lm
from lmrl.policies.lora import LoraSettings, apply_lora, base_model_context, trainable_parameters
from lmrl.policies.module import REF_LOGP, LMPolicyModule
from lmrl.policies.text_policy import TextPolicy

ARCHS = ("llama", "qwen2", "gpt_neox", "gpt2")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)


def _config(arch: str, vocab: int, eos: int, pad: int):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    common = {"vocab_size": vocab, "eos_token_id": eos, "bos_token_id": eos, "pad_token_id": pad}
    if arch == "llama":
        return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, **common)  # fmt: skip
    if arch == "qwen2":
        return Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=512, **common)  # fmt: skip
    if arch == "gpt_neox":
        return GPTNeoXConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             max_position_embeddings=512, **common)  # fmt: skip
    return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=512, **common)


@pytest.fixture(scope="module", params=ARCHS)
def arch_dir(request, tmp_path_factory):
    """A tiny randomly initialised model of one architecture, with a chat template for Llama."""
    from transformers import AutoModelForCausalLM

    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import disable_dropout, train_tokenizer

    path = tmp_path_factory.mktemp(request.param)
    tok = train_tokenizer(env_corpus(["lmrl/Maze-v0", "lmrl/GuessNumber-v0"], episodes=6), vocab_size=400)
    if request.param == "llama":
        tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(request.param, len(tok), tok.eos_token_id, tok.pad_token_id))
    disable_dropout(model).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


_observations = random_walk_observations


def _adapter(mode: str, env_id: str, chat: bool) -> AdapterConfig:
    # The summary line only: the tiny tokenizer spends many tokens on the long sections.
    system = env_instructions(lmrl.envs.env_info(env_id)["doc"], sections=()) if chat else None
    return AdapterConfig(action_mode=mode, max_prompt_tokens=400, max_candidate_tokens=12, chat_system=system,
                         choice_scoring="sum")  # fmt: skip


def _lora_module(model_dir: str, mode: str, adapter: AdapterConfig, **extra) -> tuple[LMPolicyModule, TextCodec]:
    _, tok = load_lm(model_dir)
    codec = TextCodec(tok, adapter)
    module = LMPolicyModule(
        observation_space=codec.observation_space(),
        action_space=codec.action_space(),
        model_config={"model_path": model_dir, "action_mode": mode, "max_new_tokens": 6, "temperature": 0.8,
                      "lora": LoraSettings(r=4, alpha=8).to_dict(), "choice_scoring": "sum",
                      "value_norm": True, **extra},
    )  # fmt: skip
    with torch.no_grad():  # LoRA's B starts at 0; move it so the adapter changes the outputs
        for name, p in module.lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    return module, codec


def _batch(codec: TextCodec, observations: list[dict]) -> dict:
    enc = [codec.encode_observation(o) for o in observations]
    return {Columns.OBS: {k: torch.as_tensor(np.stack([e[k] for e in enc])) for k in enc[0]}}


@pytest.mark.parametrize(("mode", "env_id"), [("choose", "lmrl/Maze-v0"), ("generate", "lmrl/GuessNumber-v0")])
def test_lora_sampling_logp_equals_learner_logp(arch_dir, mode, env_id):
    module, codec = _lora_module(arch_dir, mode, _adapter(mode, env_id, chat=True), kl_ref=True)
    batch = _batch(codec, _observations(env_id, 12))
    explored = module.forward_exploration(batch)
    batch[Columns.ACTIONS] = explored[Columns.ACTIONS]
    trained = module.forward_train(batch)
    recomputed = module.get_train_action_dist_cls().from_logits(trained[Columns.ACTION_DIST_INPUTS]).logp(
        batch[Columns.ACTIONS]
    )
    assert torch.allclose(recomputed, explored[Columns.ACTION_LOGP], atol=1e-4)
    if mode == "generate":  # runners send per-token log-probs (B, T), not (B, T*V) logits
        sent = explored[Columns.ACTION_DIST_INPUTS]
        assert sent.shape == batch[Columns.ACTIONS].shape == (12, 6)
        learned = trained[Columns.ACTION_DIST_INPUTS]  # (B, 2T): token log-probs, then entropies
        assert learned.shape == (12, 12)
        assert torch.allclose(sent, learned[:, :6], atol=1e-4)
    # The KL reference is the adapter switched off: different from the adapted policy, and
    # equal to a plain load of the base model.
    assert not torch.allclose(trained[REF_LOGP], recomputed, atol=1e-3)
    base, _ = load_lm(arch_dir)
    obs = batch[Columns.OBS]
    if mode == "choose":
        ref_logits, _ = lm_ops.choice_logits(base, obs, "sum", 0.8)
        ref = torch.log_softmax(ref_logits, -1).gather(1, batch[Columns.ACTIONS].long()[:, None])[:, 0]
    else:
        logits, _ = lm_ops.teacher_force(base, obs["prompt_ids"], obs["prompt_mask"], batch[Columns.ACTIONS].long(), module.eos_id, 0.8)
        ref = lm_ops.sequence_logp(logits, batch[Columns.ACTIONS].long())
    assert torch.allclose(trained[REF_LOGP], ref, atol=1e-4)


@pytest.mark.parametrize("scoring", ["mean", "sum"])
def test_shared_prompt_scoring_equals_scoring_alone(arch_dir, scoring):
    lm, tok = load_lm(arch_dir)
    codec = TextCodec(tok, _adapter("choose", "lmrl/CustomerSupport-v0", chat=True))
    obs = _batch(codec, _observations("lmrl/CustomerSupport-v0", 6))[Columns.OBS]
    with torch.no_grad():
        shared, f1 = lm_ops.choice_logits(lm, obs, scoring, shared_prompt=True)
        alone, f2 = lm_ops.choice_logits(lm, obs, scoring, shared_prompt=False)
    valid = obs["action_mask"] > 0
    assert torch.allclose(shared[valid], alone[valid], atol=1e-4)
    assert torch.allclose(f1, f2, atol=1e-4)
    # Each candidate scored by itself, prompt + candidate in one sequence.
    b, k = 0, int(valid[0].sum()) - 1
    p = obs["prompt_ids"][b][obs["prompt_mask"][b] > 0]
    c = obs["cand_ids"][b, k][obs["cand_mask"][b, k] > 0]
    with torch.no_grad():
        logp = torch.log_softmax(lm(input_ids=torch.cat([p, c])[None]).logits[0, len(p) - 1 : -1], -1)
    total = logp.gather(1, c[:, None]).sum()
    expected = total if scoring == "sum" else total / len(c)
    assert torch.allclose(shared[b, k], expected, atol=1e-4)


def test_lora_on_and_off(arch_dir):
    lm, tok = load_lm(arch_dir)
    ids = torch.as_tensor([tok("You are in a maze.")["input_ids"]])
    with torch.no_grad():
        base = lm(input_ids=ids).logits
    peft_lm = apply_lora(lm, LoraSettings(r=4, alpha=8))
    assert 0 < trainable_parameters(peft_lm) < 0.2 * sum(p.numel() for p in peft_lm.parameters())
    with torch.no_grad():
        assert torch.equal(peft_lm(input_ids=ids).logits, base)  # B = 0 at the start
        for name, p in peft_lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
        adapted = peft_lm(input_ids=ids).logits
        with base_model_context(peft_lm):
            off = peft_lm(input_ids=ids).logits
    assert not torch.allclose(adapted, base, atol=1e-3)
    assert torch.allclose(off, base, atol=1e-5)


def test_lora_targets_that_match_nothing_name_what_exists(arch_dir):
    lm, _ = load_lm(arch_dir)
    with pytest.raises(PolicyError, match=r"match no linear layer .* It has: "):
        apply_lora(lm, LoraSettings(target_modules=["q_projj"]))


def test_gradient_checkpointing_gives_the_same_loss_gradient(arch_dir):
    adapter = _adapter("choose", "lmrl/Maze-v0", chat=False)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        module, codec = _lora_module(arch_dir, "choose", adapter, gradient_checkpointing=checkpointing)
        torch.manual_seed(1)
        for name, p in module.lm.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0.0, 0.2)
        batch = _batch(codec, _observations("lmrl/Maze-v0", 6))
        batch[Columns.ACTIONS] = torch.zeros(6, dtype=torch.long)
        module.train()
        out = module.forward_train(batch)
        loss = out[Columns.ACTION_DIST_INPUTS].log_softmax(-1)[:, 0].sum()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for n, p in module.lm.named_parameters() if "lora_A" in n]))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.parametrize(("mode", "env_id"), [("choose", "lmrl/Maze-v0"), ("generate", "lmrl/GuessNumber-v0")])
def test_lora_export_loads_with_the_same_greedy_actions(arch_dir, tmp_path, mode, env_id):
    from transformers import AutoModelForCausalLM

    adapter = _adapter(mode, env_id, chat=True)
    module, codec = _lora_module(arch_dir, mode, adapter)
    state = module.get_state()
    assert state and all("lora_" in k or k.startswith("value_head") for k in state)  # adapter + value head only
    out = export_policy(state, arch_dir, tmp_path / "export", env_id=env_id, adapter=adapter, temperature=0.8,
                        lora=LoraSettings(r=4, alpha=8).to_dict())  # fmt: skip
    assert type(AutoModelForCausalLM.from_pretrained(out)) is type(load_lm(arch_dir)[0])  # merged: a plain model
    policy = TextPolicy.from_pretrained(out)
    observations = _observations(env_id, 8)
    expected = module.forward_inference(_batch(codec, observations))[Columns.ACTIONS]
    if mode == "choose":
        want = [o["actions"][int(i)] for o, i in zip(observations, expected, strict=True)]
    else:
        want = [codec.decode_action(t) for t in expected.numpy()]
    assert policy.act(observations) == want
