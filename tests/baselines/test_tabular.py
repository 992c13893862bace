"""Tabular Q-learning and SARSA over hashed observation text."""

from __future__ import annotations

import json

import pytest

import lmrl  # noqa: F401
from lmrl.baselines import LearningCurve, TabularAgent, discrete_actions, state_key, train_tabular
from lmrl.baselines.__main__ import main
from lmrl.envs import RandomAgent, make, register, run_episodes, unregister
from lmrl.errors import ConfigError

EVAL_SEED = 10_000  # evaluation seeds lie apart from the training seeds 0..episodes-1


@pytest.mark.parametrize(("algo", "episodes"), [("q", 2000), ("sarsa", 2500)])
def test_beats_random_on_maze(algo, episodes):
    agent, curve = train_tabular("lmrl/Maze-v0", algo=algo, episodes=episodes, seed=0)
    trained = run_episodes("lmrl/Maze-v0", agent.greedy(), n=100, seed=EVAL_SEED)
    random = run_episodes("lmrl/Maze-v0", RandomAgent(0), n=100, seed=EVAL_SEED)
    # measured: q 0.90, sarsa 0.83 (random 0.14) on these seeds
    assert trained.success_rate >= 0.6 and trained.success_rate > random.success_rate + 0.4
    assert trained.mean_return > random.mean_return + 0.4
    assert curve.success_rate(last=200) > curve.success_rate()  # it learned while training
    assert len(curve.returns) == episodes and agent.n_states > 100


def test_seeded_training_is_reproducible():
    a_agent, a_curve = train_tabular("lmrl/Maze-v0", episodes=50, seed=3)
    b_agent, b_curve = train_tabular("lmrl/Maze-v0", episodes=50, seed=3)
    assert a_agent.q == b_agent.q and a_curve == b_curve
    c_agent, _ = train_tabular("lmrl/Maze-v0", episodes=50, seed=4)
    assert c_agent.q != a_agent.q


def test_free_text_env_with_a_vocabulary_learns_the_best_phrase():
    agent, curve = train_tabular("lmrl/SentimentSteer-v0", episodes=400, seed=0, alpha=0.5)
    report = run_episodes("lmrl/SentimentSteer-v0", agent.greedy(), n=50, seed=EVAL_SEED)
    assert report.success_rate == 1.0  # one of the positive phrases, on every prompt


def test_discrete_actions():
    maze = make("lmrl/Maze-v0")
    obs, _ = maze.reset(seed=0)
    assert discrete_actions(obs, maze) == obs["actions"]
    guess = make("lmrl/GuessNumber-v0")
    obs, _ = guess.reset(seed=0)
    assert discrete_actions(obs, guess) == tuple(str(v) for v in range(1, 17))
    steer = make("lmrl/SentimentSteer-v0")
    obs, _ = steer.reset(seed=0)
    assert discrete_actions(obs, steer) == steer.unwrapped.action_vocabulary()


class FreeTextEnv(lmrl.envs.TextEnv):
    """A free-text env without a discrete action set."""

    def _reset(self, options):
        return "Say anything.", (), {}

    def _step(self, action):
        return "Thanks.", (), 0.0, True, False, {}

    def random_action(self, rng):
        return "hi"


def test_env_without_discrete_actions_is_refused():
    register("test/FreeText-v0", f"{__name__}:FreeTextEnv")
    try:
        with pytest.raises(
            ConfigError,
            match="FreeTextEnv lists no admissible actions here and has no action_vocabulary",
        ):
            train_tabular("test/FreeText-v0", episodes=1)
    finally:
        unregister("test/FreeText-v0")


def test_bad_arguments():
    with pytest.raises(ConfigError, match="algo must be one of \\('q', 'sarsa'\\), got 'dqn'"):
        train_tabular("lmrl/Maze-v0", algo="dqn")
    with pytest.raises(ConfigError, match="episodes must be >= 1, got 0"):
        train_tabular("lmrl/Maze-v0", episodes=0)
    with pytest.raises(ConfigError, match="alpha must be in"):
        train_tabular("lmrl/Maze-v0", alpha=0)


def test_state_key_is_stable():
    assert state_key("You are in a maze.") == state_key("You are in a maze.")
    assert state_key("a") != state_key("b")
    assert (
        state_key("You are in a maze.") == 0xEB2CC87B24F75575
    )  # blake2b: the same in every process


def test_agent_api_and_ties():
    env = make("lmrl/Maze-v0")
    obs, info = env.reset(seed=0)
    agent = TabularAgent(seed=0)
    picks = {agent.act(obs, info, env) for _ in range(50)}
    assert picks == set(obs["actions"])  # unseen state: ties broken at random
    agent.update(obs, obs["actions"][0], 1.0, alpha=1.0)
    assert {agent.act(obs, info, env) for _ in range(10)} == {obs["actions"][0]}
    assert agent.greedy().q is agent.q


def test_learning_curve_helpers():
    curve = LearningCurve(returns=[0.0, 1.0, 1.0, 0.0], successes=[False, True, True, False])
    assert curve.success_rate() == 0.5 and curve.success_rate(last=3) == pytest.approx(2 / 3)
    assert curve.smoothed(window=2) == [0.0, 0.5, 1.0, 0.5]


def test_command_line(capsys):
    assert main(["lmrl/SentimentSteer-v0", "--episodes", "200", "-n", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env_id"] == "lmrl/SentimentSteer-v0" and out["algo"] == "q" and out["states"] == 40
    assert 0.0 <= out["eval_success_rate"] <= 1.0
