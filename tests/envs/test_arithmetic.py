"""lmrl/Arithmetic-v0: levels, exact checking of the answer, parsing, penalties."""

from __future__ import annotations

import numpy as np
import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, make, run_episodes
from lmrl.envs.arithmetic import ANSWER_RANGE, ArithmeticEnv, make_problem, parse_answer
from lmrl.errors import ConfigError


def test_episode_text_exact():
    env = make("lmrl/Arithmetic-v0")
    obs, _ = env.reset(seed=0)
    assert obs == {"text": "Compute 17 + 13. Answer with a whole number.", "actions": ()}
    obs, reward, terminated, truncated, info = env.step("17 + 13 = 30")
    assert obs["text"] == "17 + 13 = 30. Your answer 30 is right."
    assert reward == 1.0 and terminated and not truncated and info["success"] is True


@pytest.mark.parametrize(
    ("answer", "reward", "verdict"),
    [
        ("31", 0.0, "Your answer 31 is wrong."),
        ("The answer is 30.", 1.0, "Your answer 30 is right."),
        ("banana", -0.2, "I could not read a whole number in 'banana'."),
        ("30.5", -0.2, "I could not read a whole number in '30.5'."),
        ("", -0.2, "I could not read a whole number in ''."),
    ],
)
def test_rewards(answer, reward, verdict):
    env = make("lmrl/Arithmetic-v0")
    env.reset(seed=0)
    obs, r, terminated, *_ = env.step(answer)
    assert r == pytest.approx(reward) and terminated
    assert obs["text"] == f"17 + 13 = 30. {verdict}"


def test_parse_answer():
    assert parse_answer("42") == 42
    assert parse_answer("-7") == -7
    assert parse_answer("48 - 6 = 42") == 42
    assert parse_answer("7, no, 8") == 8
    assert parse_answer("3.5") is None and parse_answer("31m") is None and parse_answer("x") is None


@pytest.mark.parametrize("level", [1, 2, 3])
def test_levels_stay_in_their_answer_range(level):
    rng = np.random.default_rng(0)
    lo, hi = ANSWER_RANGE[level]
    answers = [make_problem(level, rng)[1] for _ in range(2000)]
    assert lo <= min(answers) and max(answers) <= hi
    assert len(set(answers)) > 20


def test_levels_get_harder_for_random_guessing():
    rates = [
        run_episodes(
            "lmrl/Arithmetic-v0", RandomAgent(0), n=300, env_kwargs={"level": lv}
        ).success_rate
        for lv in (1, 2, 3)
    ]
    assert rates[0] > rates[1] >= rates[2]
    for lv in (1, 2, 3):
        assert (
            run_episodes(
                "lmrl/Arithmetic-v0", ExpertAgent(), n=20, env_kwargs={"level": lv}
            ).success_rate
            == 1.0
        )


def test_action_vocabulary_covers_the_answers():
    env = make("lmrl/Arithmetic-v0", level=2)
    env.reset(seed=3)
    assert str(env.unwrapped.answer) in env.unwrapped.action_vocabulary()


def test_bad_level():
    with pytest.raises(ConfigError, match="level must be 1, 2 or 3, got 4"):
        ArithmeticEnv(level=4)
