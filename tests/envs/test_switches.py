"""lmrl/Switches-v0: dynamics, text, variants, difficulty, and the policy tokenizer's alignment."""

from __future__ import annotations

import pickle
import re

import pytest
from gymnasium.utils.env_checker import check_env

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, catalog, make, run_episodes
from lmrl.envs.base import CHARSET
from lmrl.envs.checks import check_env_id
from lmrl.envs.switches import SwitchesEnv
from lmrl.errors import ConfigError

ENV_ID = "lmrl/Switches-v0"
VARIANTS = [
    {},
    {"layout": "paired"},
    {"n_switches": 1},
    {"n_switches": 2},
    {"n_switches": 4},
    {"n_switches": 6, "layout": "paired"},
    {"max_steps": 4},
]
_PAIR = re.compile(r"(\w+) (on|off)")


def play(env, agent, seed):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    while True:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info, env))
        trace.append((obs, reward, terminated, truncated, info["success"]))
        if terminated or truncated:
            return trace


class ObservationOnlyAgent:
    """Reads the grouped text only (no privileged state): toggle the first mismatch, else done."""

    def act(self, obs, info, env):
        goal_text, now_text = obs["text"].split("Goal: ")[1].split(" Now: ")
        goal, now = dict(_PAIR.findall(goal_text)), dict(_PAIR.findall(now_text))
        for name, value in now.items():
            if goal[name] != value:
                return f"toggle {name}"
        return "done"


@pytest.mark.parametrize("kwargs", VARIANTS, ids=str)
def test_check_env_and_expert(kwargs):
    env = make(ENV_ID, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    report = run_episodes(ENV_ID, ExpertAgent(), n=100, env_kwargs=kwargs)
    assert report.success_rate == 1.0
    assert all(r == 1.0 for r in report.returns)


def test_lmrl_envs_check_passes():
    results = check_env_id(ENV_ID)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]
    assert len(results) == 8


@pytest.mark.parametrize(
    ("kwargs", "low", "high"),
    [
        ({}, 0.04, 0.12),
        ({"layout": "paired"}, 0.04, 0.12),
        ({"n_switches": 2}, 0.10, 0.22),
        ({"n_switches": 6}, 0.0, 0.03),
    ],
    ids=str,
)
def test_random_success_in_range(kwargs, low, high):
    report = run_episodes(ENV_ID, RandomAgent(seed=0), n=200, env_kwargs=kwargs)
    assert low <= report.success_rate <= high, report.summary()


def test_observation_alone_suffices():
    assert run_episodes(ENV_ID, ObservationOnlyAgent(), n=200).success_rate == 1.0


def test_reset_text_and_actions_exact():
    obs, info = make(ENV_ID).reset(seed=0)
    assert obs == {
        "text": "Goal: lamp on, fan on, radio on. Now: lamp on, fan off, radio on.",
        "actions": ("toggle lamp", "toggle fan", "toggle radio", "done"),
    }
    assert info["mismatched"] == 1 and info["success"] is False
    paired, _ = make(ENV_ID, layout="paired").reset(seed=0)
    assert paired["text"] == "lamp: on, goal on. fan: off, goal on. radio: on, goal on."


@pytest.mark.parametrize("kwargs", VARIANTS, ids=str)
def test_same_seed_same_episode_and_pickle(kwargs):
    a, b = make(ENV_ID, **kwargs), make(ENV_ID, **kwargs)
    assert play(a, RandomAgent(5), 3) == play(b, RandomAgent(5), 3)
    env = make(ENV_ID, **kwargs)
    env.reset(seed=11)
    env.step("toggle lamp")
    copy = pickle.loads(pickle.dumps(env))
    assert copy.step("done")[:4] == env.step("done")[:4]


def test_start_differs_from_goal_and_both_vary():
    env = SwitchesEnv()
    pairs = set()
    for seed in range(500):
        env.reset(seed=seed)
        assert env.state != env.goal
        pairs.add((tuple(env.state), tuple(env.goal)))
    assert len(pairs) == 8 * 7  # every goal with every other start


def test_reward_only_when_done_in_goal_state():
    env = make(ENV_ID)
    env.reset(seed=0)  # only the fan differs
    obs, reward, terminated, truncated, info = env.step("done")
    assert (reward, terminated, truncated, info["success"]) == (0.0, True, False, False)
    assert obs == {"text": "You said done. Not all switches match the goal.", "actions": ()}
    env.reset(seed=0)
    obs, reward, *_ = env.step("toggle fan")
    assert reward == 0.0 and obs["text"].startswith(
        "You toggled the fan. Goal: lamp on, fan on, radio on. Now: lamp on, fan on,"
    )
    obs, reward, terminated, truncated, info = env.step("done")
    assert (reward, terminated, info["success"]) == (1.0, True, True)
    assert env.step("toggle lamp")[1:4] == (0.0, True, False)  # after the end: nothing changes


def test_truncation_is_a_failure():
    env = make(ENV_ID, max_steps=3)
    env.reset(seed=0)
    results = [
        env.step(a) for a in ("toggle fan", "toggle lamp", "toggle lamp")
    ]  # in the goal state, never done
    assert [r[3] for r in results] == [False, False, True]
    assert results[-1][1] == 0.0 and results[-1][4]["success"] is False


@pytest.mark.parametrize(
    ("action", "effect"),
    [
        ("Switch the FAN, please", "You toggled the fan."),
        ("lamp", "You toggled the lamp."),
        ("stop", None),
    ],
)
def test_free_text_actions(action, effect):
    env = make(ENV_ID)
    env.reset(seed=0)
    obs, _, terminated, *_ = env.step(action)
    assert terminated == (effect is None)
    if effect:
        assert obs["text"].startswith(effect)


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        ("banana", "banana"),
        ("", ""),
        ("x" * 10_000, "x" * 17 + "..."),
        ("\x00\x07\x1b[31m", "[31m"),
    ],
)
def test_unreadable_text_is_explained_and_changes_nothing(action, shown):
    env = make(ENV_ID)
    env.reset(seed=0)
    before = list(env.unwrapped.state)
    obs, reward, terminated, truncated, _ = env.step(action)
    assert obs["text"].startswith(
        f"I could not read a switch in '{shown}'. Say toggle lamp, toggle fan, toggle radio or done. Goal:"
    )
    assert env.unwrapped.state == before and reward == -0.1 and not terminated and not truncated
    assert obs in env.observation_space and set(obs["text"]) <= set(CHARSET)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_switches": 0}, "n_switches must be between 1 and 6, got 0"),
        ({"n_switches": 7}, "n_switches must be between 1 and 6, got 7"),
        ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
        ({"layout": "mixed"}, "layout must be one of grouped, paired, got 'mixed'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        SwitchesEnv(**kwargs)


def test_documented_and_registered():
    info = catalog.env_info(ENV_ID)
    assert info["default_action_mode"] == "choose"
    for section in (
        "Description",
        "Action Space",
        "Observation Space",
        "Rewards",
        "Episode End",
        "Arguments",
        "Version History",
    ):
        assert f"## {section}" in info["doc"]


def test_env_tokenizer_keeps_states_aligned_and_prompts_short():
    """With the BPE `lmrl train` fits to the env text, ' on' and ' off' are tokens of their own
    (never merged with a switch name or the comma), so goal and state compare token by token,
    and the longest prompt fits the policy's 96 prompt tokens with room to spare."""
    from lmrl.envs.adapter import PROMPT_FORMAT
    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import train_tokenizer

    tok = train_tokenizer(
        env_corpus([ENV_ID], episodes=60) + env_corpus(["lmrl/Maze-v0"], episodes=10), 512
    )
    pieces = [
        tok.decode([i])
        for i in tok("Goal: lamp on, fan off, radio on.", add_special_tokens=False)["input_ids"]
    ]
    assert pieces[2:10] == [" lamp", " on", ",", " fan", " off", ",", " radio", " on"]
    env = make(ENV_ID)
    longest = 0
    for seed in range(50):
        for obs in (s if isinstance(s, dict) else s[0] for s in play(env, RandomAgent(seed), seed)):
            longest = max(
                longest,
                len(
                    tok(PROMPT_FORMAT.format(text=obs["text"]), add_special_tokens=False)[
                        "input_ids"
                    ]
                ),
            )
    assert longest <= 48
