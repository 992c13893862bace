"""lmrl/Wordle-v0: the word list, the game's colouring rule, feedback text, admissible words, expert."""

from __future__ import annotations

import numpy as np
import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, make, run_episodes
from lmrl.envs.wordle import (
    GREEN,
    GREY,
    YELLOW,
    WordleEnv,
    _codes,
    feedback,
    load_words,
    parse_word,
    pattern_ids,
)
from lmrl.errors import ConfigError


def test_shipped_word_list():
    words = load_words()
    assert len(words) == 469 and words == tuple(sorted(set(words)))
    assert all(len(w) == 5 and w.isalpha() and w.islower() and w.isascii() for w in words)


@pytest.mark.parametrize(
    ("guess", "secret", "marks"),
    [
        ("crane", "slate", (GREY, GREY, GREEN, GREY, GREEN)),
        ("geese", "these", (GREY, GREY, GREEN, GREEN, GREEN)),  # no yellow for the extra e's
        ("llama", "hello", (YELLOW, YELLOW, GREY, GREY, GREY)),
        ("speed", "abide", (GREY, GREY, YELLOW, GREY, YELLOW)),  # one e in the secret: one yellow
        ("abide", "abide", (GREEN,) * 5),
    ],
)
def test_feedback_follows_the_game(guess, secret, marks):
    assert feedback(guess, secret) == marks


def test_vectorised_patterns_match_feedback():
    words = load_words()[:80] + ("geese", "these", "llama", "hello", "eerie", "sassy")
    codes = _codes(words)
    for guess in words:
        expected = [sum(m * 3**i for i, m in enumerate(feedback(guess, s))) for s in words]
        assert pattern_ids(guess, codes).tolist() == expected


def test_feedback_text_exact():
    env = make("lmrl/Wordle-v0")
    obs, _ = env.reset(seed=1)
    assert env.unwrapped.secret == "legal"
    assert obs["text"] == "Wordle: guess the secret 5-letter word. 6 tries left."
    obs, reward, terminated, truncated, info = env.step("arise")
    assert obs["text"] == (
        "Wordle, 5 tries left. arise: a is in the word, not at 1, r is absent, i is absent, "
        "s is absent, e is in the word, not at 5. Known: _____. Also: a e. Absent: i r s."
    )
    assert reward == pytest.approx(-0.05) and not terminated and not truncated
    obs, *_ = env.step("I guess sheep")  # the last 5-letter word counts
    assert obs["text"] == (
        "Wordle, 4 tries left. sheep: s is absent, h is absent, e is in the word, not at 3, "
        "no other e, p is absent. Known: _____. Also: a e. Absent: h i p r s."
    )
    obs, reward, *_ = env.step("12345")
    assert obs["text"] == (
        "Wordle, 3 tries left. I could not read a 5-letter word in '12345'. "
        "Known: _____. Also: a e. Absent: h i p r s."
    )
    assert reward == pytest.approx(-0.2)
    obs, reward, terminated, truncated, info = env.step("legal")
    assert obs == {"text": "Wordle: legal is right!", "actions": ()}
    assert reward == 1.0 and terminated and info["success"] is True


def test_truncated_after_max_turns():
    env = make("lmrl/Wordle-v0", max_turns=2)
    env.reset(seed=1)
    assert env.step("about")[3] is False
    obs, reward, terminated, truncated, info = env.step("above")
    assert truncated and not terminated and obs["text"].startswith("Wordle, 0 tries left.")


def test_admissible_words():
    env = make("lmrl/Wordle-v0")
    obs, _ = env.reset(seed=4)
    for _ in range(3):
        actions = obs["actions"]
        assert len(actions) == 8 and list(actions) == sorted(set(actions))
        base = env.unwrapped
        consistent = [a for a in actions if a in base.candidates]
        assert base.expert_action() in consistent
        assert len(consistent) >= min(4, len(base.candidates))  # up to half the list is consistent
        obs, _, terminated, _, _ = env.step(actions[0] if actions[0] != base.secret else actions[1])
        if terminated:
            break


def test_the_secret_is_not_always_offered():
    hits = 0
    for s in range(100):
        env = make("lmrl/Wordle-v0")
        obs, _ = env.reset(seed=s)
        hits += env.unwrapped.secret in obs["actions"]
    assert hits < 20  # 7 of 469 words besides the opener are offered


def test_expert_solves_every_seed_in_few_guesses():
    report = run_episodes("lmrl/Wordle-v0", ExpertAgent(), n=100)
    assert report.success_rate == 1.0 and report.mean_length < 4


def test_parse_word():
    assert parse_word("crane") == "crane"
    assert parse_word("I guess crane") == "crane"
    assert parse_word("CRANE!") == "crane"
    assert parse_word("hi") is None and parse_word("") is None


def test_custom_word_list_and_bad_arguments():
    env = WordleEnv(words=["apple", "berry", "cherry"[:5], "mango"])
    obs, _ = env.reset(seed=0)
    assert env.secret in {"apple", "berry", "cherr", "mango"}
    with pytest.raises(ConfigError, match="five-letter words a-z"):
        WordleEnv(words=["apple", "banana"])
    with pytest.raises(ConfigError, match="max_candidates must be in 2..64, got 1"):
        WordleEnv(max_candidates=1)
    with pytest.raises(ConfigError, match="max_turns must be >= 1"):
        WordleEnv(max_turns=0)


def test_random_agent_uses_admissible_words():
    env = make("lmrl/Wordle-v0")
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    assert env.unwrapped.random_action(rng) in obs["actions"]
