"""Every registered env through Gymnasium's check_env, determinism, pickling and malformed actions,
and the ``lmrl envs check`` machinery (which must also catch broken envs)."""

from __future__ import annotations

import math
import pickle
import random
import re
import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import lmrl  # noqa: F401
from lmrl.envs import RandomAgent, TextEnv, catalog, list_envs, make, register, unregister
from lmrl.envs.checks import MALFORMED_ACTIONS, CheckResult, check_env_id
from lmrl.envs.multiagent.tictactoe import TicTacToeEnv
from lmrl.errors import InvalidActionError, UnknownEnvError

ENV_IDS = [env_id for env_id in list_envs() if env_id.startswith("lmrl/")]


def check_names(api_test: str) -> list[str]:
    """The names of the checks, in order; only the API test differs between kinds."""
    return [
        "make",
        api_test,
        "determinism",
        "pickle mid-episode",
        "random rollouts",
        "malformed action text",
        "non-text action",
        "expert rollouts",
    ]


def _play(env, agent, seed, steps=None):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps or 10_000):
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info, env))
        trace.append((obs, reward, terminated, truncated, info["success"]))
        if terminated or truncated:
            break
    return trace


def test_builtin_ids():
    assert ENV_IDS == [
        "lmrl/Arithmetic-v0",
        "lmrl/CustomerSupport-v0",
        "lmrl/GuessNumber-v0",
        "lmrl/Maze-v0",
        "lmrl/SentimentSteer-v0",
        "lmrl/Switches-v0",
        "lmrl/TwentyQuestions-v0",
        "lmrl/Wordle-v0",
    ]
    assert sorted(catalog.BUILTIN_ENVS) == sorted(
        [*ENV_IDS, "lmrl/Negotiation-v0", "lmrl/Referential-v0", "lmrl/TicTacToe-v0"]
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_docstring_sections(env_id):
    doc = catalog.env_info(env_id)["doc"]
    for section in (
        "Description",
        "Action Space",
        "Observation Space",
        "Rewards",
        "Episode End",
        "Arguments",
        "Version History",
    ):
        assert f"\n## {section}\n" in doc, (env_id, section)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_expert_action_is_admissible(env_id):
    """Expert demos work in choose mode: where the env lists actions, the expert picks one of them."""
    env = make(env_id)
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            action = env.unwrapped.expert_action()
            if obs["actions"]:
                assert action in obs["actions"], (seed, obs, action)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        assert info["success"], (env_id, seed)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    env = make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_determinism(env_id):
    for seed in (0, 7):
        a = _play(make(env_id), RandomAgent(seed), seed)
        b = _play(make(env_id), RandomAgent(seed), seed)
        assert a == b


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seeds_differ(env_id):
    # the same agent on 20 seeds: the episodes (hidden state included) must vary
    episodes = {repr(_play(make(env_id), RandomAgent(0), s)) for s in range(20)}
    assert len(episodes) > 5
    if env_id == "lmrl/GuessNumber-v0":  # its first text hides the secret
        secrets = set()
        for s in range(20):
            env = make(env_id)
            env.reset(seed=s)
            secrets.add(env.unwrapped.secret)
        assert len(secrets) > 5


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_mid_episode(env_id):
    env = make(env_id)
    agent = RandomAgent(1)
    obs, info = env.reset(seed=3)
    obs, _, _, _, info = env.step(agent.act(obs, info, env))
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    for _ in range(5):
        action = agent.act(obs, info, env)
        a = env.unwrapped.step(action)
        b = clone.step(action)
        assert a == b
        obs, info = a[0], a[4]
        if a[2] or a[3]:
            break


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("label", list(MALFORMED_ACTIONS))
def test_malformed_action_text(env_id, label):
    env = make(env_id)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(MALFORMED_ACTIONS[label])
    assert obs in env.observation_space
    if env_id == "lmrl/SentimentSteer-v0" and label != "empty":
        # any continuation with letters is valid there; its reward is its sentiment (0: neutral)
        assert reward == 0.0 and info["success"] is False
    else:
        assert math.isfinite(reward) and reward < 0
    assert isinstance(terminated, bool) and isinstance(truncated, bool)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("action", [3, None, b"north", ["north"]])
def test_non_text_action_raises(env_id, action):
    env = make(env_id)
    env.reset(seed=0)
    name = type(env.unwrapped).__name__
    pattern = rf"^{name}\.step expects the action as text \(str\), got {type(action).__name__} {re.escape(repr(action))}; pass a string such as '.+'$"
    with pytest.raises(InvalidActionError, match=pattern):
        env.step(action)


def test_non_text_action_before_reset_still_explains():
    env = catalog._CATALOG["lmrl/Maze-v0"].env_class()
    with pytest.raises(InvalidActionError, match="expects the action as text"):
        env.step(3)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_id_all_pass(env_id):
    results = check_env_id(env_id, seed=0, episodes=10)
    assert all(isinstance(r, CheckResult) for r in results)
    assert [r.name for r in results] == check_names("gymnasium check_env")
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    expert = results[-1]
    assert expert.detail.startswith("10 episodes, success rate 1.00")


def test_check_env_id_unknown():
    with pytest.raises(UnknownEnvError, match=re.escape("Did you mean `lmrl/Maze-v0`?")):
        check_env_id("lmrl/Mase-v0")


def test_check_env_id_serves_multiagent_envs():
    """The one check runs the same checks on AEC and Parallel envs, with PettingZoo's API tests."""
    for env_id, kind, agents in (
        ("lmrl/TicTacToe-v0", "aec", "player_0, player_1"),
        ("lmrl/Referential-v0", "parallel", "speaker_0, listener_0"),
    ):
        results = check_env_id(env_id, seed=0, episodes=5)
        assert [r.name for r in results] == check_names("pettingzoo api test")
        assert all(r.ok for r in results), [r for r in results if not r.ok]
        assert results[0].detail == f"{kind} env, agents {agents}"
    with pytest.raises(UnknownEnvError, match=re.escape("Did you mean `lmrl/TicTacToe-v0`?")):
        check_env_id("lmrl/TicTacToo-v0")


# --- broken envs the checks must catch ------------------------------------------------------


class FragileEnv(TextEnv):
    """Raises on empty text, and its rewards are not seeded."""

    def _reset(self, options):
        self.t = 0
        return "Say something.", ("hello", "bye"), {}

    def _step(self, action):
        if not action:
            raise ValueError("empty action")
        self.t += 1
        return f"You said {action}.", ("hello", "bye"), random.random(), self.t >= 3, False, {}


class NumericEnv(gym.Env):
    def __init__(self):
        self.observation_space = gym.spaces.Discrete(2)
        self.action_space = gym.spaces.Discrete(2)


@pytest.fixture
def broken_ids():
    ids = ["test/Fragile-v0", "test/Numeric-v0"]
    register(ids[0], f"{__name__}:FragileEnv")
    register(ids[1], f"{__name__}:NumericEnv")
    yield ids
    for env_id in ids:
        unregister(env_id)


def test_checks_catch_a_fragile_env(broken_ids):
    results = {r.name: r for r in check_env_id("test/Fragile-v0", episodes=3)}
    assert results["make"].ok
    assert not results["determinism"].ok and "different episodes" in results["determinism"].detail
    assert not results["malformed action text"].ok
    assert results["malformed action text"].detail == "ValueError: empty action"
    assert results["non-text action"].ok
    assert results["expert rollouts"].ok and "skipped" in results["expert rollouts"].detail


class NaNPenaltyTicTacToe(TicTacToeEnv):
    """Tic-tac-toe whose illegal moves cost NaN."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.illegal_penalty = math.nan


def test_checks_catch_a_broken_multiagent_env():
    register("test/NaNTicTacToe-v0", f"{__name__}:NaNPenaltyTicTacToe")
    try:
        results = {r.name: r for r in check_env_id("test/NaNTicTacToe-v0", episodes=3)}
    finally:
        unregister("test/NaNTicTacToe-v0")
    assert results["random rollouts"].ok  # admissible moves only: no penalty
    assert not results["malformed action text"].ok
    assert (
        results["malformed action text"].detail
        == "action 'empty', player_0: reward nan is not finite"
    )


def test_checks_stop_at_make_for_numeric_spaces(broken_ids):
    results = check_env_id("test/Numeric-v0")
    assert len(results) == 1 and not results[0].ok
    assert results[0].detail.startswith(
        "RegistrationError: Env `test/Numeric-v0` has action space Discrete(2)"
    )
