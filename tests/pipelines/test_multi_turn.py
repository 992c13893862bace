"""Multi-turn chat prompts are token-in/token-out: earlier turns are the exact ids the policy produced.

A tiny randomly initialised Llama whose tokenizer has a chat template (so lmrl
treats it as a pretrained instruct model: chat, multi-turn, LoRA), in the
adapter alone, in evaluation and Serve's chat mapping, and through a real
RLlib env runner and the learner's connectors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_run_config
from ray.rllib.core.columns import Columns
from rllib_helpers import sample_learner_batch

import lmrl.envs
from lmrl.envs.adapter import AdapterConfig, TextCodec, TokenizedEnv
from lmrl.envs.rollout import run_episodes
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.evaluate import run_policy_episodes, zero_shot_config, zero_shot_policy
from lmrl.pipelines.policy_setup import adapter_config, resolve_auto
from lmrl.pipelines.rl.builder import build_algorithm_config
from lmrl.policies.chat import ChatTemplate
from lmrl.policies.lm import load_lm
from lmrl.policies.text_policy import PolicyAgent, TextPolicy

CHAT_TEMPLATE = (
    "{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """A tiny Llama (random weights) with a BPE tokenizer trained offline and a chat template."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import disable_dropout, train_tokenizer

    path = tmp_path_factory.mktemp("chat_llama")
    envs = ["lmrl/GuessNumber-v0", "lmrl/CustomerSupport-v0", "lmrl/Maze-v0"]
    tok = train_tokenizer(env_corpus(envs, episodes=6), vocab_size=400)
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    disable_dropout(AutoModelForCausalLM.from_config(config)).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _codec(model_dir: str, mode: str, prompt_tokens: int = 600) -> TextCodec:
    _, tok = load_lm(model_dir)
    config = AdapterConfig(
        action_mode=mode, max_prompt_tokens=prompt_tokens, max_new_tokens=4, max_candidate_tokens=12,
        chat_system="Play well.", choice_scoring="sum", multi_turn=True,
    )  # fmt: skip
    return TextCodec(tok, config)


def _ids(obs: dict) -> list[int]:
    return [int(t) for t in obs["prompt_ids"][obs["prompt_mask"] > 0]]


def _sampled(codec: TextCodec, action: np.ndarray) -> list[int]:
    ids = [int(t) for t in action]
    return ids[: ids.index(codec.eos_id) + 1] if codec.eos_id in ids else ids


def test_pretrained_chat_models_get_multi_turn_prompts_in_dialogue_envs(chat_model_dir, tiny_model_dir):
    chat = zero_shot_config(chat_model_dir, "lmrl/CustomerSupport-v0")  # a dialogue env
    assert lmrl.envs.env_info("lmrl/CustomerSupport-v0")["dialogue"]
    assert resolve_auto(chat).policy.multi_turn is True
    assert adapter_config(chat).multi_turn is True
    off = chat.model_copy(update={"policy": chat.policy.model_copy(update={"multi_turn": False})})
    assert adapter_config(off).multi_turn is False
    # Envs that describe the whole state each step stay single-turn unless asked.
    state = zero_shot_config(chat_model_dir, "lmrl/GuessNumber-v0")
    assert adapter_config(state).multi_turn is False
    on = state.model_copy(update={"policy": state.policy.model_copy(update={"multi_turn": True})})
    assert adapter_config(on).multi_turn is True
    preset = zero_shot_config(tiny_model_dir, "lmrl/CustomerSupport-v0")
    assert adapter_config(preset).multi_turn is False


def test_each_prompt_extends_the_last_with_the_exact_ids_sampled(chat_model_dir):
    codec = _codec(chat_model_dir, "generate")
    env = TokenizedEnv(lmrl.envs.make("lmrl/GuessNumber-v0"), codec.tokenizer, codec.config)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    sampled_turns = []
    for t in range(5):
        # Random ids, some without EOS (the turn then closes with the template's end-of-turn).
        action = rng.integers(3, len(codec.tokenizer), size=4)
        if t % 2:
            action[2] = codec.eos_id
        before = _ids(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        after = _ids(obs)
        sampled = _sampled(codec, action)
        assert after[: len(before) + len(sampled)] == before + sampled, f"turn {t}"
        sampled_turns.append([i for i in sampled if i != codec.eos_id])
        if terminated or truncated:
            break
    assert len(sampled_turns) >= 3
    # Re-tokenising the decoded text would have changed some turn's ids.
    tok = codec.tokenizer
    assert any(
        tok(tok.decode(ids), add_special_tokens=False)["input_ids"] != ids for ids in sampled_turns
    )


def test_choose_mode_turns_are_the_chosen_candidates_ids_and_env_messages(chat_model_dir):
    codec = _codec(chat_model_dir, "choose")
    env = TokenizedEnv(lmrl.envs.make("lmrl/CustomerSupport-v0"), codec.tokenizer, codec.config)
    obs, _ = env.reset(seed=0)
    for index in (0, 1, 2):
        before = _ids(obs)
        chosen = [int(t) for t in obs["cand_ids"][index][obs["cand_mask"][index] > 0]]
        obs, _, _, _, info = env.step(index)
        after = _ids(obs)
        assert after[: len(before) + len(chosen)] == before + chosen
        # CustomerSupport's text repeats the transcript; the user turn is only its new line.
        assert info["message"].startswith("Customer: ")
        turn_text = codec.tokenizer.decode(after[len(before) + len(chosen) :])
        assert info["message"] in turn_text and "Agent:" not in turn_text


def test_a_full_prompt_drops_the_oldest_whole_turns(chat_model_dir):
    big = _codec(chat_model_dir, "choose")
    actions = lmrl.envs.make("lmrl/CustomerSupport-v0").reset(seed=0)[0]["actions"]
    turns = [big.text_turn_ids(f"Customer: message number {i}.", actions[i % 4]) for i in range(8)]
    current, header = big._ids("Customer: now."), big._assistant_header
    head = big._prompt_ids("Customer: now.", actions)[: -len(current) - len(header)]
    room = (
        len(head) + len(current) + len(header) + int(2.5 * len(turns[-1]))
    )  # two and a half turns
    small = _codec(chat_model_dir, "choose", prompt_tokens=room)
    full = big._prompt_ids("Customer: now.", actions, turns)
    cut = small._prompt_ids("Customer: now.", actions, turns)
    assert len(cut) <= room < len(full)
    assert full[: len(head)] == cut[: len(head)] == head
    assert cut[-len(current) - len(header) :] == current + header
    body = cut[len(head) : -len(current) - len(header)]
    flat = [[t for turn in turns[n:] for t in turn] for n in range(len(turns) + 1)]
    kept = [n for n in range(len(turns) + 1) if flat[n] == body]
    assert kept == [6]  # the newest two, whole


def test_evaluation_and_serve_render_text_history_as_the_same_turns(chat_model_dir):
    codec = _codec(chat_model_dir, "choose")
    env = TokenizedEnv(lmrl.envs.make("lmrl/CustomerSupport-v0"), codec.tokenizer, codec.config)
    raw = env.unwrapped
    obs, _ = env.reset(seed=0)
    user_turn = raw._last_text  # "Customer: Hi, I need some help."
    messages = [("system", "ignored"), ("user", user_turn.removeprefix("Customer: "))]
    history = []
    for index in (0, 1):
        action_text = raw._last_actions[index]
        history.append((user_turn, action_text))
        obs, _, _, _, info = env.step(index)
        user_turn = info["message"]
        messages += [("assistant", action_text), ("user", user_turn.removeprefix("Customer: "))]
    # Serve maps an OpenAI chat onto the same turns: user lines and the assistant's replies.
    served = ChatTemplate.from_meta({"env_id": "lmrl/CustomerSupport-v0"}).observation(
        messages, multi_turn=True
    )
    assert served["history"] == tuple(history)
    assert served["text"] == info["message"]
    encoded = codec.encode_observation(served)
    assert _ids(encoded) == _ids(obs)  # candidates' ids re-tokenise to themselves


def test_zero_shot_evaluation_runs_multi_turn_episodes(chat_model_dir):
    cfg = zero_shot_config(chat_model_dir, "lmrl/CustomerSupport-v0")
    # The tiny tokenizer spends ~650 tokens on the env's documentation.
    cfg = RunConfig.model_validate(
        {
            **cfg.model_dump(exclude_unset=True),
            "policy": {"model": chat_model_dir, "max_prompt_tokens": 1000},
        }
    )
    policy = zero_shot_policy(cfg)
    assert policy.codec.multi_turn
    seen: list[dict] = []

    class Recording(TextPolicy):  # the real policy, noting what it is asked to act on
        def act(self, observations, *args, **kwargs):
            seen.extend(observations)
            return super().act(observations, *args, **kwargs)

    recording = Recording(policy.lm, policy.tokenizer, policy.adapter, policy.temperature, policy.meta)
    report = run_policy_episodes(recording, "lmrl/CustomerSupport-v0", n=1, seed=0, greedy=True)
    assert report.n == 1 and report.lengths[0] >= 2
    batched, seen[:] = list(seen), []
    # Each step shows the episode's earlier turns; the one-env agent (`lmrl envs rollout
    # --policy`) shows exactly the same.
    assert [len(o["history"]) for o in batched] == list(range(report.lengths[0]))
    run_episodes("lmrl/CustomerSupport-v0", PolicyAgent(recording), n=1, seed=0)
    assert seen == batched


def test_the_learner_trains_on_the_ids_the_env_runner_sampled(
    ray_session, chat_model_dir, tmp_path
):
    cfg = tiny_run_config(
        chat_model_dir, str(tmp_path), env={"id": "lmrl/GuessNumber-v0"},
        policy={"action_mode": "generate", "max_new_tokens": 4, "max_prompt_tokens": 900, "multi_turn": True},
    )  # fmt: skip
    cfg = resolve_auto(cfg)
    assert cfg.policy.multi_turn and cfg.policy.lora.enabled
    algo = build_algorithm_config(cfg, chat_model_dir).build_algo()
    try:
        episodes, batch = sample_learner_batch(algo, num_timesteps=48)
    finally:
        algo.stop()
    codec = TextCodec(load_lm(chat_model_dir)[1], adapter_config(cfg))
    prompts = [list(map(int, r)) for r in np.asarray(batch[Columns.OBS]["prompt_ids"])]
    masks = np.asarray(batch[Columns.OBS]["prompt_mask"])
    learner_rows = {
        tuple(p[i] for i in np.nonzero(m)[0]) for p, m in zip(prompts, masks, strict=True)
    }
    checked = 0
    for ep in episodes:
        obs, actions = ep.get_observations(), np.asarray(ep.get_actions())
        for t in range(len(ep) - 1):
            before = _ids({k: np.asarray(v)[t] for k, v in obs.items()})
            after = _ids({k: np.asarray(v)[t + 1] for k, v in obs.items()})
            sampled = _sampled(codec, actions[t])
            # The learner's prompt for turn t+1 holds turn t's sampled ids verbatim.
            assert tuple(after) in learner_rows
            assert after[: len(before) + len(sampled)] == before + sampled
            checked += 1
    assert checked >= 8
