"""Chat histories as env observations, and batched decoding with per-request sampling parameters."""

from __future__ import annotations

import pytest
import torch

import lmrl.envs
from lmrl.envs.adapter import AdapterConfig
from lmrl.envs.agents import ExpertAgent, RandomAgent
from lmrl.pipelines.export import export_policy
from lmrl.policies.chat import ChatTemplate, DialogueFormat, messages_from_text, static_actions
from lmrl.policies.decoding import DecodeRequest, SamplingParams, decode
from lmrl.policies.sampler import top_p_filter
from lmrl.policies.text_policy import TextPolicy

CS = "lmrl/CustomerSupport-v0"


@pytest.fixture(scope="module")
def policies(tiny_model_dir, tmp_path_factory):
    """Choose- and generate-mode CustomerSupport policies (random tiny weights) exported and loaded."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    state = {f"lm.{k}": v for k, v in lm.state_dict().items()}
    out = {}
    for mode in ("choose", "generate"):
        path = export_policy(
            state,
            tiny_model_dir,
            tmp_path_factory.mktemp(f"cs-{mode}") / "export",
            env_id=CS,
            adapter=AdapterConfig(action_mode=mode, max_prompt_tokens=128),
            extra={"env_kwargs": {}},
        )
        out[mode] = TextPolicy.from_pretrained(path)
    return out


def _dialogue_states(n_episodes: int = 6) -> list[dict]:
    """Observations from expert and random CustomerSupport play (long dialogues included)."""
    states = []
    for seed in range(n_episodes):
        env = lmrl.envs.make(CS)
        agent = ExpertAgent() if seed % 2 else RandomAgent(seed)
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            states.append(obs)
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info, env))
            done = terminated or truncated
        states.append(obs)
    return states


def test_chat_history_renders_exactly_the_env_observation():
    template = ChatTemplate.from_meta({"env_id": CS, "env_kwargs": {}})
    assert template.format == DialogueFormat(user="Customer", assistant="Agent", history=6, max_assistant_chars=60)
    assert template.actions == lmrl.envs.make(CS).unwrapped.actions
    for seed in range(8):
        env = lmrl.envs.make(CS)
        agent = RandomAgent(seed)
        obs, info = env.reset(seed=seed)
        messages = [("user", obs["text"].removeprefix("Customer: "))]
        for _ in range(8):
            assert template.observation(messages) == {"text": obs["text"], "actions": tuple(obs["actions"])}
            action = agent.act(obs, info, env)
            obs, _, terminated, truncated, info = env.step(action)
            customer = obs["text"].splitlines()[-1].removeprefix("Customer: ")
            messages += [("assistant", action), ("user", customer)]
            if terminated or truncated:
                break


def test_chat_rendering_normalises_like_the_env():
    template = ChatTemplate.from_meta({"env_id": CS})
    env = lmrl.envs.make(CS)
    obs, _ = env.reset(seed=0)
    long_reply = "  I   have\nrefunded\tyour order and " + "x" * 80
    obs, *_ = env.step(long_reply)
    opening = obs["text"].splitlines()[0].removeprefix("Customer: ")
    customer = obs["text"].splitlines()[-1].removeprefix("Customer: ")
    messages = [("system", "You are helpful."), ("user", opening), ("assistant", long_reply), ("user", customer)]
    assert template.render(messages) == obs["text"]


def test_chat_override_from_lmrl_json_and_unknown_env():
    meta = {"env_id": CS, "chat": {"user": "Client", "history": 2}}
    template = ChatTemplate.from_meta(meta)
    assert template.render([("user", "a"), ("assistant", "b"), ("user", "c")]) == "Agent: b\nClient: c"
    generic = ChatTemplate.from_meta({"env_id": "no/SuchEnv-v0"})
    assert generic.render([("user", "hi"), ("assistant", "hello")]) == "User: hi\nAssistant: hello"
    assert generic.actions is None
    with pytest.raises(ValueError, match="unknown chat role 'bot'"):
        generic.render([("bot", "x")])


def test_static_actions_only_for_envs_with_a_fixed_list():
    assert static_actions(CS) == lmrl.envs.make(CS).unwrapped.actions
    assert static_actions("lmrl/Maze-v0") is None  # the open directions change with the position


def test_messages_from_text_inverts_render():
    template = ChatTemplate.from_meta({"env_id": CS})
    for obs in _dialogue_states(3):
        assert template.render(messages_from_text(obs["text"], template.format)) == obs["text"]


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_greedy_decode_equals_text_policy_act(policies, mode):
    policy = policies[mode]
    states = _dialogue_states()
    expected = policy.act(states, greedy=True)
    actions = [tuple(s["actions"]) if mode == "choose" else () for s in states]
    # Mixed batch: greedy rows next to sampled ones with other limits must not change the greedy picks.
    requests = []
    for s, a in zip(states, actions, strict=True):
        requests.append(DecodeRequest(s["text"], a, SamplingParams(temperature=0)))
        requests.append(DecodeRequest(s["text"], a, SamplingParams(n=2, temperature=1.3, top_p=0.8, max_tokens=3, seed=1)))
    results = decode(policy, requests)
    served = [r.completions[0].text for r in results[::2]]
    assert served == expected
    assert all(r.batch_rows == 3 * len(states) for r in results)


def test_choose_logprob_is_the_policy_probability(policies):
    policy = policies["choose"]
    states = _dialogue_states(2)[:5]
    probs = policy.choice_probs(states)
    results = decode(policy, [DecodeRequest(s["text"], tuple(s["actions"]), SamplingParams(temperature=0)) for s in states])
    for p, r in zip(probs, results, strict=True):
        c = r.completions[0]
        assert c.action_index == max(range(len(p)), key=p.__getitem__)
        assert c.logprob == pytest.approx(torch.log(torch.tensor(p[c.action_index])).item(), abs=1e-5)
        assert c.finish_reason == "stop" and c.completion_tokens > 0


def test_generate_logprob_matches_teacher_forcing(policies):
    from lmrl.policies import lm_ops

    policy = policies["generate"]
    states = _dialogue_states(1)[:4]
    results = decode(policy, [DecodeRequest(s["text"], (), SamplingParams(n=2, seed=3)) for s in states])
    b = policy.encode([s for s in states for _ in range(2)])
    tokens = torch.tensor([c.token_ids for r in results for c in r.completions])  # (B, T)
    assert tokens.shape == (len(states) * 2, policy.adapter.max_new_tokens)
    logits, _ = lm_ops.teacher_force(
        policy.lm, b["prompt_ids"], b["prompt_mask"], tokens, policy.codec.eos_id, policy.temperature
    )
    expected = lm_ops.sequence_logp(logits, tokens)
    served = torch.tensor([c.logprob for r in results for c in r.completions])
    torch.testing.assert_close(served, expected, atol=1e-4, rtol=0)
    texts = [policy.codec.decode_action(t) for t in tokens.numpy()]
    assert texts == [c.text for r in results for c in r.completions]


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_seeded_sampling_is_reproducible_whatever_the_batch(policies, mode):
    policy = policies[mode]
    obs = _dialogue_states(1)[2]
    actions = tuple(obs["actions"]) if mode == "choose" else ()
    request = DecodeRequest(obs["text"], actions, SamplingParams(n=4, temperature=1.0, seed=7))
    alone = decode(policy, [request])[0]
    other = DecodeRequest("Customer: Where is my order?", actions, SamplingParams(n=3, temperature=2.0, seed=1))
    crowded = decode(policy, [other, request, other])[1]
    assert [c.text for c in alone.completions] == [c.text for c in crowded.completions]
    assert len(alone.completions) == 4
    unseeded = {c.text for _ in range(3) for c in decode(policy, [DecodeRequest(obs["text"], actions, SamplingParams(n=4))])[0].completions}
    assert len(unseeded) > 1


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_tiny_top_p_is_greedy(policies, mode):
    policy = policies[mode]
    states = _dialogue_states(2)
    actions = [tuple(s["actions"]) if mode == "choose" else () for s in states]
    greedy = decode(policy, [DecodeRequest(s["text"], a, SamplingParams(temperature=0)) for s, a in zip(states, actions, strict=True)])
    nucleus = decode(
        policy, [DecodeRequest(s["text"], a, SamplingParams(temperature=1.5, top_p=1e-6)) for s, a in zip(states, actions, strict=True)]
    )
    assert [r.completions[0].text for r in greedy] == [r.completions[0].text for r in nucleus]


def test_top_p_filter_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]))
    kept = torch.isfinite(top_p_filter(logits, torch.tensor([0.7, 1.0])))
    assert kept.tolist() == [[True, True, False, False], [True, True, True, True]]


def test_max_tokens_and_stop(policies):
    gen, choose = policies["generate"], policies["choose"]
    text = "Customer: Hi, I need some help."
    (long,) = decode(gen, [DecodeRequest(text, (), SamplingParams(temperature=0, max_tokens=12))])
    (short,) = decode(gen, [DecodeRequest(text, (), SamplingParams(temperature=0, max_tokens=2))])
    assert short.completions[0].completion_tokens <= 2
    assert short.completions[0].finish_reason in ("length", "stop")
    assert long.completions[0].completion_tokens <= 12
    actions = ("What is your order number?",)
    (cut,) = decode(choose, [DecodeRequest(text, actions, SamplingParams(temperature=0, max_tokens=2))])
    assert cut.completions[0].finish_reason == "length"
    assert actions[0].startswith(cut.completions[0].text) and len(cut.completions[0].text) < len(actions[0])
    (stopped,) = decode(choose, [DecodeRequest(text, actions, SamplingParams(temperature=0, stop=(" order",)))])
    assert (stopped.completions[0].text, stopped.completions[0].finish_reason) == ("What is your", "stop")


def test_choose_scoring_in_pair_chunks_equals_one_chunk(policies, monkeypatch):
    """The chunk holds CHOICE_PAIRS prompt-candidate pairs (KV-cache copies), whatever the rows."""
    from lmrl.policies import lm_ops, text_policy

    policy = policies["choose"]
    states = _dialogue_states(2)[:12]
    b = policy.encode(states)
    k = int(b["action_mask"].sum(-1).max())
    assert k > 1
    whole = policy.choice_logits(b)  # 12 rows x k <= 128 pairs: one chunk
    chunks: list[int] = []
    real = lm_ops.choice_logits

    def counted(lm, obs, *args, **kwargs):
        chunks.append(len(obs["prompt_ids"]))
        return real(lm, obs, *args, **kwargs)

    monkeypatch.setattr(lm_ops, "choice_logits", counted)
    monkeypatch.setattr(text_policy, "CHOICE_PAIRS", 2 * k + 1)  # two rows a chunk
    split = policy.choice_logits(b)
    assert chunks == [2] * 6
    assert torch.allclose(split, whole, atol=1e-5)
    assert text_policy.choice_chunk_rows(k) == 2 and text_policy.choice_chunk_rows(10 * (2 * k + 1)) == 1
