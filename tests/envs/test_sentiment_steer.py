"""lmrl/SentimentSteer-v0: VADER reward of the continuation, prompts, expert and random agents."""

from __future__ import annotations

import pickle

import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, make, run_episodes
from lmrl.envs.sentiment_steer import (
    PHRASE_VOCABULARY,
    POSITIVE_PHRASES,
    SentimentSteerEnv,
    load_prompts,
    sentiment,
)
from lmrl.errors import ConfigError


def test_prompts_ship_with_lmrl():
    prompts = load_prompts()
    assert len(prompts) == 40 and all(p and not p.startswith("#") for p in prompts)


def test_episode_text_and_reward():
    env = make("lmrl/SentimentSteer-v0")
    obs, info = env.reset(seed=0)
    assert obs == {"text": "Continue the text: The school play", "actions": ()}
    obs, reward, terminated, truncated, info = env.step("was a wonderful time")
    assert obs["text"] == "The school play was a wonderful time [sentiment 0.57]"
    assert reward == pytest.approx(sentiment("was a wonderful time")) == pytest.approx(0.5719)
    assert terminated and not truncated and info["success"] is True


def test_negative_and_empty_continuations():
    env = make("lmrl/SentimentSteer-v0")
    env.reset(seed=0)
    _, reward, _, _, info = env.step("was awful and sad")
    assert reward < -0.5 and info["success"] is False
    env.reset(seed=0)
    obs, reward, *_ = env.step("...")
    assert reward == pytest.approx(-0.2) and obs["text"].endswith("[no words to score]")


def test_only_the_first_max_words_are_scored():
    env = make("lmrl/SentimentSteer-v0", max_words=2)
    env.reset(seed=0)
    _, reward, *_ = env.step("was fine great wonderful lovely")
    assert reward == pytest.approx(sentiment("was fine"))


def test_expert_phrases_succeed_and_vocabulary_mixes():
    assert all(sentiment(p) >= 0.6 for p in POSITIVE_PHRASES)
    scores = [sentiment(p) for p in PHRASE_VOCABULARY]
    assert max(scores) >= 0.5 and min(scores) < -0.3 and 0.0 in scores


def test_expert_and_random():
    assert run_episodes("lmrl/SentimentSteer-v0", ExpertAgent(), n=50).success_rate == 1.0
    assert run_episodes("lmrl/SentimentSteer-v0", RandomAgent(0), n=200).success_rate < 0.4


def test_pickles_small():
    env = make("lmrl/SentimentSteer-v0")
    env.reset(seed=0)
    env.step("was nice")  # the analyzer is built, but lives outside the env
    assert len(pickle.dumps(env.unwrapped)) < 20_000


def test_bad_arguments():
    with pytest.raises(ConfigError, match="max_words must be >= 1"):
        SentimentSteerEnv(max_words=0)
    with pytest.raises(ConfigError, match=r"success_threshold must be in \(-1, 1\], got 2"):
        SentimentSteerEnv(success_threshold=2)
