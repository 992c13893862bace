"""Scripted agents and run_episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmrl  # noqa: F401
from lmrl.envs import (
    ExpertAgent,
    MultiAgentReport,
    RandomAgent,
    RolloutReport,
    make,
    run_episodes,
)
from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent
from lmrl.errors import UnknownEnvError


def test_random_agent_picks_admissible_actions_uniformly():
    env = make("lmrl/CustomerSupport-v0")
    obs, info = env.reset(seed=0)
    agent = RandomAgent(0)
    picks = [agent.act(obs, info, env) for _ in range(800)]
    counts = {a: picks.count(a) for a in obs["actions"]}
    assert set(picks) == set(obs["actions"])
    assert min(counts.values()) > 60  # about 100 each


def test_random_agent_free_text_uses_env_hook():
    env = make("lmrl/GuessNumber-v0")
    obs, info = env.reset(seed=0)
    assert obs["actions"] == ()
    action = RandomAgent(0).act(obs, info, env)  # through the wrappers to env.unwrapped
    assert 1 <= int(action) <= 16


def test_random_agent_is_seeded_and_apart_from_env_stream():
    env = make("lmrl/Maze-v0")
    obs, info = env.reset(seed=0)
    b1, b2 = RandomAgent(5), RandomAgent(5)
    assert [b1.act(obs, info, env) for _ in range(20)] == [
        b2.act(obs, info, env) for _ in range(20)
    ]
    # same number as the env seed, different stream: does not replay the env's draws
    assert RandomAgent(0).rng.integers(1 << 30) != np.random.default_rng(0).integers(1 << 30)


def test_expert_agent_uses_unwrapped():
    env = make("lmrl/Maze-v0")
    obs, info = env.reset(seed=0)
    assert ExpertAgent().act(obs, info, env) == env.unwrapped.expert_action()


def test_run_episodes_report():
    report = run_episodes("lmrl/GuessNumber-v0", ExpertAgent(), n=5, seed=10, keep_transcripts=2)
    assert isinstance(report, RolloutReport)
    assert report.n == 5 and report.seed == 10 and report.env_id == "lmrl/GuessNumber-v0"
    assert report.success_rate == 1.0
    assert report.mean_return == pytest.approx(sum(report.returns) / 5)
    assert len(report.transcripts) == 2 and len(report.final_texts) == 2
    first = report.transcripts[0]
    assert len(first) == report.lengths[0]
    text, action, reward = first[0]
    assert text == "Guess the number between 1 and 16. You have 6 guesses." and action == "8"
    assert sum(r for _, _, r in first) == pytest.approx(report.returns[0])
    assert report.final_texts[0].endswith("is correct!")
    assert report.summary()["success_rate"] == 1.0


def test_episode_i_uses_seed_plus_i():
    many = run_episodes("lmrl/Maze-v0", ExpertAgent(), n=3, seed=5, keep_transcripts=3)
    one = run_episodes("lmrl/Maze-v0", ExpertAgent(), n=1, seed=7, keep_transcripts=1)
    assert many.transcripts[2] == one.transcripts[0]


def test_run_episodes_env_kwargs():
    report = run_episodes("lmrl/Maze-v0", RandomAgent(0), n=5, env_kwargs={"max_steps": 2})
    assert max(report.lengths) <= 2


def test_empty_report():
    report = run_episodes("lmrl/Maze-v0", RandomAgent(0), n=0)
    assert report.success_rate == 0.0 and math.isnan(report.mean_return)


def test_run_episodes_unknown_id():
    with pytest.raises(UnknownEnvError, match="Did you mean `lmrl/GuessNumber-v0`"):
        run_episodes("lmrl/GuessNumbers-v0", RandomAgent(0), n=1)


# --- the same run_episodes for multi-agent envs ----------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "seats"),
    [
        ("lmrl/TicTacToe-v0", ["player_0", "player_1"]),
        ("lmrl/Referential-v0", ["speaker_0", "listener_0"]),
    ],
)
def test_run_episodes_multiagent_report(env_id, seats):
    """An AEC and a Parallel env (played through its AEC form) give per-agent reports."""
    report = run_episodes(env_id, ExpertMultiAgent(), n=4, seed=3, keep_transcripts=1)
    assert isinstance(report, MultiAgentReport)
    assert report.n == 4 and report.seed == 3 and report.env_id == env_id
    assert sorted(report.returns) == sorted(seats)
    assert all(report.success_rate(a) == 1.0 for a in seats)
    assert len(report.transcripts) == 1 and len(report.transcripts[0]) == report.lengths[0]
    agent, text, action = report.transcripts[0][0]
    assert agent == seats[0] and isinstance(text, str) and isinstance(action, str)
    assert report.summary()["agents"][seats[0]]["success_rate"] == 1.0


def test_run_episodes_multiagent_seats_and_limits():
    seats = {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(0)}
    report = run_episodes("lmrl/TicTacToe-v0", seats, n=10)
    assert report.success_rate("player_0") == 1.0
    assert report.mean_return("player_0") > report.mean_return("player_1")
    with pytest.raises(ValueError, match=r"no agent given for \['player_1'\]"):
        run_episodes("lmrl/TicTacToe-v0", {"player_0": ExpertMultiAgent()}, n=1)
    with pytest.raises(
        RuntimeError, match=r"episode 0 of `lmrl/TicTacToe-v0` ran past max_steps=2"
    ):
        run_episodes("lmrl/TicTacToe-v0", RandomMultiAgent(0), n=1, max_steps=2)
    with pytest.raises(RuntimeError, match=r"episode 0 of `lmrl/Maze-v0` ran past max_steps=1"):
        run_episodes("lmrl/Maze-v0", RandomAgent(0), n=1, max_steps=1, env_kwargs={"max_steps": 5})


def test_run_episodes_unknown_multiagent_id():
    with pytest.raises(UnknownEnvError, match="Did you mean `lmrl/TicTacToe-v0`"):
        run_episodes("lmrl/TicTacToe-v9", RandomMultiAgent(0), n=1)
