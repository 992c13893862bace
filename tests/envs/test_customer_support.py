"""lmrl/CustomerSupport-v0: the simulated customer, hidden slots, rewards, keyword mapping."""

from __future__ import annotations

import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, make, run_episodes
from lmrl.envs.base import CHARSET
from lmrl.envs.customer_support import INTENTS, UTTERANCES, CustomerSupportEnv, parse_act


def _seed_with_intent(intent: str) -> int:
    env = CustomerSupportEnv()
    for seed in range(100):
        env.reset(seed=seed)
        if env.intent == intent:
            return seed
    raise AssertionError(intent)


def test_reset_text_and_actions():
    env = make("lmrl/CustomerSupport-v0")
    obs, info = env.reset(seed=0)
    assert obs == {"text": "Customer: Hi, I need some help.", "actions": tuple(UTTERANCES.values())}
    assert info["success"] is False


def test_expert_always_succeeds():
    report = run_episodes("lmrl/CustomerSupport-v0", ExpertAgent(), n=200)
    assert report.success_rate == 1.0
    assert set(report.lengths) == {3, 4}


def test_every_intent_occurs():
    env = CustomerSupportEnv()
    seen = set()
    for seed in range(100):
        env.reset(seed=seed)
        seen.add(env.intent)
    assert seen == set(INTENTS)


def test_random_agent_rarely_succeeds():
    report = run_episodes("lmrl/CustomerSupport-v0", RandomAgent(0), n=200)
    assert report.success_rate < 0.4


@pytest.mark.parametrize("intent", list(INTENTS))
def test_slots_hidden_until_asked(intent):
    env = make("lmrl/CustomerSupport-v0")
    obs, _ = env.reset(seed=_seed_with_intent(intent))
    cs = env.unwrapped
    secrets = [cs.slots["order_id"], cs.request] + [
        cs.slots[k] for k in ("issue", "city") if k in cs.slots
    ]
    assert not any(s in obs["text"] for s in secrets)
    obs, *_ = env.step(UTTERANCES["greet"])
    assert obs["text"].endswith(f"Customer: {cs.request}")
    assert cs.slots["order_id"] not in obs["text"]
    obs, *_ = env.step(UTTERANCES["ask_order"])
    assert obs["text"].endswith(f"Customer: It is {cs.slots['order_id']}.")
    for slot, act in (("issue", "ask_issue"), ("city", "ask_city")):
        if slot in cs.slots:
            assert cs.slots[slot] not in obs["text"]
            obs, *_ = env.step(UTTERANCES[act])
            assert cs.slots[slot] in obs["text"]


def test_full_refund_dialogue_exact():
    env = make("lmrl/CustomerSupport-v0")
    env.reset(seed=_seed_with_intent("refund"))
    transcript = []
    while True:
        action = env.unwrapped.expert_action()
        obs, reward, terminated, truncated, info = env.step(action)
        transcript.append((action, reward))
        if terminated or truncated:
            break
    assert [a for a, _ in transcript] == [
        UTTERANCES["greet"],
        UTTERANCES["ask_order"],
        UTTERANCES["ask_issue"],
        UTTERANCES["refund"],
    ]
    assert [r for _, r in transcript] == pytest.approx([-0.05, -0.05, -0.05, 1.0])
    assert terminated and info["success"] is True
    slots = env.unwrapped.slots
    assert obs["text"] == (
        "Agent: What is your order number?\n"
        f"Customer: It is {slots['order_id']}.\n"
        "Agent: What is wrong with the item?\n"
        f"Customer: {slots['issue']}\n"
        "Agent: I have refunded your order.\n"
        "Customer: Thanks, that solves it!"
    )
    assert len(obs["text"].splitlines()) == 6  # history window


def test_wrong_resolution_is_penalised_and_complained_about():
    env = make("lmrl/CustomerSupport-v0")
    env.reset(seed=_seed_with_intent("track_order"))
    env.step(UTTERANCES["greet"])
    obs, reward, terminated, truncated, info = env.step(UTTERANCES["cancel"])
    assert reward == pytest.approx(-0.5) and not terminated and info["success"] is False
    assert obs["text"].endswith("Customer: That is not what I asked for.")


def test_premature_resolution_is_penalised():
    env = make("lmrl/CustomerSupport-v0")
    env.reset(seed=_seed_with_intent("change_address"))
    env.step(UTTERANCES["greet"])
    env.step(UTTERANCES["ask_order"])
    obs, reward, terminated, *_ = env.step(UTTERANCES["change_address"])
    assert reward == pytest.approx(-0.5) and not terminated
    assert obs["text"].endswith("Customer: But you do not know the new city yet.")


def test_irrelevant_question_gets_a_polite_no():
    env = make("lmrl/CustomerSupport-v0")
    env.reset(seed=_seed_with_intent("cancel_order"))
    obs, reward, *_ = env.step(UTTERANCES["ask_city"])
    assert obs["text"].endswith(
        "Customer: I do not need a new address."
    ) and reward == pytest.approx(-0.05)


@pytest.mark.parametrize("action", ["banana", "", "x" * 10_000, "\x00\x07\x1b[31m"])
def test_unmatched_text_is_not_understood(action):
    env = make("lmrl/CustomerSupport-v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs["text"].endswith("Customer: Sorry, I do not understand.")
    assert (
        reward == pytest.approx(-0.1) and not terminated and not truncated and info["act"] is None
    )
    assert obs in env.observation_space and set(obs["text"]) <= set(CHARSET)


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("How can I help you today?", "greet"),
        ("hello, how may I help?", "greet"),
        ("What is your order number?", "ask_order"),
        ("could you tell me the order id", "ask_order"),
        ("What is the problem with it?", "ask_issue"),
        ("Where should we ship it? Which city?", "ask_city"),
        ("I have refunded you.", "refund"),
        ("Here is your tracking number", "track"),
        ("Your order is cancelled.", "cancel"),
        ("I changed the address for you.", "change_address"),
        ("banana", None),
    ],
)
def test_free_text_keyword_rules(text, act):
    assert parse_act(text) == act


def test_truncation_after_max_turns():
    env = make("lmrl/CustomerSupport-v0", max_turns=3)
    env.reset(seed=0)
    flags = [env.step(UTTERANCES["greet"])[3] for _ in range(3)]
    assert flags == [False, False, True]
