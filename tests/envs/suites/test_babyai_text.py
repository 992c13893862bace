"""BabyAI-Text adapter: GLAM's view description, minigrid's seeds, the bot as expert, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lmrl
from lmrl.envs import ExpertAgent, RandomAgent, run_episodes
from lmrl.envs.checks import MALFORMED_ACTIONS, check_env_id

pytest.importorskip("minigrid")  # the babyai extra; the test extra installs it
from lmrl.envs.suites.babyai_text import ACTIONS, LEVELS, describe_view  # noqa: E402


def _cell(kind: str, colour: str = "red", state: int = 0) -> list[int]:
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    return [OBJECT_TO_IDX[kind], COLOR_TO_IDX[colour], state]


def test_ids_registered():
    assert {f"babyai/{level}-v0" for level in LEVELS} <= set(lmrl.envs.list_envs())


def test_env_checks_pass():
    results = check_env_id("babyai/GoToLocal-v0", episodes=3)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]


def test_describe_view_in_glams_words():
    image = np.zeros((7, 7, 3), dtype=np.uint8)
    image[:, :, 0] = 1  # empty floor everywhere; the agent stands at (3, 6) facing up
    image[3, 4] = _cell("wall", "grey")  # 2 steps forward
    image[1, 6] = _cell("ball", "red")  # 2 steps left: an object hides the wall behind it
    image[0, 6] = _cell("wall", "grey")
    image[5, 6] = _cell("wall", "grey")  # 2 steps right
    image[4, 3] = _cell("key", "blue")  # 1 right, 3 forward
    image[2, 5] = _cell("door", "green", 2)  # 1 left, 1 forward, locked
    image[3, 1] = _cell("box", "purple")  # behind the wall: still listed, as GLAM does
    assert describe_view(image, carrying=("yellow", "key")) == [
        "You carry a yellow key",
        "You see a wall 2 steps forward",
        "You see a wall 2 steps right",
        "You see a red ball 2 steps left",
        "You see a locked green door 1 step left and 1 step forward",
        "You see a purple box 5 steps forward",
        "You see a blue key 1 step right and 3 steps forward",
    ]


def test_seed_is_minigrids_seed_and_text_is_glams_prompt():
    env = lmrl.envs.make("babyai/GoToLocal-v0")
    obs, info = env.reset(seed=5)
    plain = gym.make("BabyAI-GoToLocal-v0")
    plain_obs, _ = plain.reset(seed=5)
    assert info["mission"] == plain_obs["mission"]
    lines = obs["text"].split("\n")
    assert lines[0] == "Possible actions of the agent: " + ", ".join(ACTIONS)
    assert lines[1] == f"Goal of the agent: {plain_obs['mission']}"
    assert lines[2].startswith("Observation 0: You see")
    assert obs["actions"] == ACTIONS
    env.close()


def test_history_window():
    env = lmrl.envs.make("babyai/GoToLocal-v0", history=2)
    env.reset(seed=0)
    for action in ("turn left", "turn left", "go forward"):
        obs, *_ = env.step(action)
    text = obs["text"]
    # the last two observations, and the action between them; the current one has none yet
    assert "Observation 1:" in text and "Observation 2:" not in text
    assert "Action 0: go forward" in text and "Action 1:" not in text and "turn left\n" not in text
    env.close()


def test_expert_beats_random():
    expert = run_episodes("babyai/GoToLocal-v0", ExpertAgent(), n=10)
    rand = run_episodes("babyai/GoToLocal-v0", RandomAgent(0), n=10)
    assert expert.success_rate == 1.0
    assert rand.success_rate < 0.6
    assert expert.mean_return > rand.mean_return


def test_expert_recovers_after_the_agent_wanders():
    env = lmrl.envs.make("babyai/PickupLoc-v0")
    obs, info = env.reset(seed=1)
    rand = RandomAgent(3)
    for _ in range(5):
        obs, _, terminated, truncated, info = env.step(rand.act(obs, info, env))
        assert not (terminated or truncated)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        if terminated or truncated:
            break
    assert info["success"] and reward > 0
    env.close()


@pytest.mark.parametrize("label", list(MALFORMED_ACTIONS))
def test_bad_input_is_a_penalised_noop(label):
    env = lmrl.envs.make("babyai/GoToLocal-v0")
    env.reset(seed=0)
    before = env.unwrapped.world.agent_pos, env.unwrapped.world.agent_dir
    obs, reward, terminated, truncated, info = env.step(MALFORMED_ACTIONS[label])
    assert reward == pytest.approx(-0.1)
    assert "is not an action; nothing happened" in obs["text"]
    assert (env.unwrapped.world.agent_pos, env.unwrapped.world.agent_dir) == before
    assert env.unwrapped.world.step_count == 1  # the step is used, as minigrid's "done"
    assert obs in env.observation_space and not terminated
    env.close()
