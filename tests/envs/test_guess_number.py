"""lmrl/GuessNumber-v0: feedback text, parse penalties, expert and random agents."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, make, run_episodes
from lmrl.envs.guess_number import GuessNumberEnv, parse_guess
from lmrl.errors import ConfigError


def test_feedback_text_exact():
    env = make("lmrl/GuessNumber-v0")
    obs, info = env.reset(seed=1)
    assert obs == {"text": "Guess the number between 1 and 16. You have 6 guesses.", "actions": ()}
    assert env.unwrapped.secret == 8
    obs, reward, terminated, truncated, info = env.step("3")
    assert obs["text"] == (
        "Guess the number between 1 and 16. Your guess 3 was too low. The number is between 4 and 16. 5 guesses left."
    )
    assert reward == pytest.approx(-0.05) and not terminated and not truncated
    obs, *_ = env.step("I guess 9")
    assert obs["text"] == (
        "Guess the number between 1 and 16. Your guess 9 was too high. The number is between 4 and 8. 4 guesses left."
    )
    obs, reward, terminated, truncated, info = env.step("8")
    assert obs["text"] == "Guess the number between 1 and 16. Your guess 8 is correct!"
    assert reward == 1.0 and terminated and not truncated and info["success"] is True


@pytest.mark.parametrize(
    ("action", "event"),
    [
        ("abc", "I could not read a whole number in 'abc'."),
        ("", "I could not read a whole number in ''."),
        ("8.5", "I could not read a whole number in '8.5'."),
        ("8 or 9", "I could not read a whole number in '8 or 9'."),
        ("x" * 10_000, "I could not read a whole number in 'xxxxxxxxxxxxxxxxx...'."),
        (
            "\x00\x07\x1b[31m",
            "Your guess 31 is not between 1 and 16.",
        ),  # ANSI code stripped to "[31m"
        ("40", "Your guess 40 is not between 1 and 16."),
        ("-3", "Your guess -3 is not between 1 and 16."),
    ],
)
def test_unreadable_or_out_of_range_is_penalised(action, event):
    env = make("lmrl/GuessNumber-v0")
    env.reset(seed=1)
    env.step("3")  # the possible range is now 4..16
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs["text"] == (
        f"Guess the number between 1 and 16. {event} Answer with a whole number between 4 and 16. 4 guesses left."
    )
    assert (
        reward == pytest.approx(-0.2)
        and not terminated
        and not truncated
        and info["success"] is False
    )


def test_single_possible_number_is_named():
    env = make("lmrl/GuessNumber-v0")
    env.reset(seed=1)  # secret 8
    env.step("9")
    obs, *_ = env.step("7")
    assert obs["text"].endswith("Your guess 7 was too low. The number is 8. 4 guesses left.")
    obs, *_ = env.step("what")
    assert "Answer with the number 8. 3 guesses left." in obs["text"]


def test_parse_guess():
    assert parse_guess("12") == 12
    assert parse_guess("My guess is 12.") == 12
    assert parse_guess("+5") == 5
    assert parse_guess("-5") == -5
    assert parse_guess("1,5") is None
    assert parse_guess("twelve") is None
    assert parse_guess("9" * 40) is None


def test_truncation_after_max_turns():
    env = make("lmrl/GuessNumber-v0", max_turns=3)
    env.reset(seed=1)
    steps = [env.step("banana") for _ in range(3)]
    assert [s[3] for s in steps] == [False, False, True]
    assert steps[-1][0]["text"].endswith("0 guesses left.")


def test_expert_always_succeeds():
    report = run_episodes("lmrl/GuessNumber-v0", ExpertAgent(), n=200)
    assert report.success_rate == 1.0
    assert max(report.lengths) <= 5  # binary search over 16 numbers


def test_expert_on_other_ranges():
    report = run_episodes(
        "lmrl/GuessNumber-v0",
        ExpertAgent(),
        n=50,
        env_kwargs={"low": 0, "high": 99, "max_turns": 7},
    )
    assert report.success_rate == 1.0


def test_random_agent_guesses_in_range():
    env = make("lmrl/GuessNumber-v0")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    guesses = {int(env.unwrapped.random_action(rng)) for _ in range(300)}
    assert guesses == set(range(1, 17))
    report = run_episodes("lmrl/GuessNumber-v0", RandomAgent(0), n=200)
    assert 0.1 < report.success_rate < 0.5  # about 1 - (15/16)**6 = 0.32


def test_secret_uniform_over_range():
    env = GuessNumberEnv()
    secrets = []
    for seed in range(400):
        env.reset(seed=seed)
        secrets.append(env.secret)
    assert set(secrets) == set(range(1, 17))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low": 5, "high": 5}, "low (5) must be a whole number below high (5)"),
        ({"low": 1.5}, "low (1.5) must be a whole number below high (16)"),
        ({"max_turns": 0}, "max_turns must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        GuessNumberEnv(**kwargs)
