"""lmrl/TwentyQuestions-v0: the oracle, the observation text, parsing, admissible moves, expert."""

from __future__ import annotations

import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, make, run_episodes
from lmrl.envs.twenty_questions import OBJECTS, QUESTIONS, TwentyQuestionsEnv, parse_move
from lmrl.errors import ConfigError


def test_every_object_is_distinguishable():
    attrs = list(OBJECTS.values())
    assert len(OBJECTS) == 30 and len(set(attrs)) == len(attrs)
    assert set().union(*attrs) <= set(QUESTIONS)


def test_dialogue_text_exact():
    env = make("lmrl/TwentyQuestions-v0")
    obs, _ = env.reset(seed=1)
    assert env.unwrapped.secret == "corn"
    assert obs["text"] == "Twenty questions: find the object. 10 turns left."
    obs, reward, terminated, *_ = env.step("animal?")
    assert obs["text"] == "Twenty questions: find the object. 9 turns left. animal? No. No: animal."
    assert reward == pytest.approx(-0.05) and not terminated
    obs, *_ = env.step("Does it grow on a plant?")  # the full wording asks the same question
    assert obs["text"].endswith("plant? Yes. Yes: plant. No: animal.")
    obs, reward, *_ = env.step("Is it a cat?")
    assert obs["text"].endswith("No, it is not a cat. Yes: plant. No: animal. Not: cat.")
    assert reward == pytest.approx(-0.1)
    obs, reward, *_ = env.step("banana")
    assert "I did not understand 'banana'." in obs["text"] and reward == pytest.approx(-0.2)
    obs, reward, terminated, truncated, info = env.step("guess corn")
    assert obs == {"text": "Yes, it is a corn! You found it.", "actions": ()}
    assert reward == 1.0 and terminated and info["success"] is True


def test_truncation():
    env = make("lmrl/TwentyQuestions-v0", max_turns=2)
    env.reset(seed=1)
    assert not env.step("animal?")[3]
    obs, _, terminated, truncated, _ = env.step("animal?")
    assert truncated and not terminated and "0 turns left." in obs["text"]


@pytest.mark.parametrize(
    ("text", "move"),
    [
        ("flies?", ("ask", "flies")),
        ("Can it fly?", ("ask", "flies")),
        ("does it swim", ("ask", "water")),
        ("Is it bigger than a person?", ("ask", "big")),
        ("guess horse", ("guess", "horse")),
        ("Is it a horse?", ("guess", "horse")),
        ("horses!", ("guess", "horse")),
        ("banana", None),
        ("", None),
    ],
)
def test_parse_move(text, move):
    assert parse_move(text) == move


def test_admissible_moves():
    env = make("lmrl/TwentyQuestions-v0")
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        actions = obs["actions"]
        asks = [a for a in actions if a.endswith("?")]
        guesses = [a for a in actions if a.startswith("guess ")]
        assert len(actions) == 8 and len(asks) == 4 and len(guesses) == 4
        assert env.unwrapped.expert_action() in asks  # the best question is always offered


def test_oracle_answers_truthfully():
    env = make("lmrl/TwentyQuestions-v0", max_turns=20)
    env.reset(seed=5)
    secret = env.unwrapped.secret
    for key in QUESTIONS:
        env.step(f"{key}?")
        assert env.unwrapped.answers[key] == (key in OBJECTS[secret])
    assert env.unwrapped.possible() == [secret]


def test_expert():
    report = run_episodes("lmrl/TwentyQuestions-v0", ExpertAgent(), n=100)
    assert report.success_rate == 1.0 and max(report.lengths) <= 7


def test_bad_arguments():
    with pytest.raises(ConfigError, match="max_actions must be in 4..16, got 3"):
        TwentyQuestionsEnv(max_actions=3)
    with pytest.raises(ConfigError, match="max_turns must be >= 1, got 0"):
        TwentyQuestionsEnv(max_turns=0)
