"""lmrl/Maze-v0: dynamics, text, layout validation, and the difficulty requirements."""

from __future__ import annotations

import re

import pytest

import lmrl  # noqa: F401
from lmrl.envs import ExpertAgent, RandomAgent, make, run_episodes
from lmrl.envs.base import CHARSET
from lmrl.envs.maze import DEFAULT_LAYOUT, MazeEnv, parse_direction
from lmrl.errors import ConfigError

_OFFSET = re.compile(r"(\d+) steps? (north|east|south|west)")
_PERPENDICULAR = {
    "north": ("east", "west"),
    "south": ("east", "west"),
    "east": ("north", "south"),
    "west": ("north", "south"),
}
_AXIS_ORDER = ("north", "south", "east", "west")


def goal_directed_policy(obs: dict) -> str:
    """Sees only the observation: move towards the goal along the longer axis if open,
    else along the other goal axis, else sideways (east/north first) round the obstacle."""
    goal_sentence = re.search(r"The goal is (.*?)\.", obs["text"]).group(1)
    offsets = {d: int(n) for n, d in _OFFSET.findall(goal_sentence)}
    goal_dirs = sorted(offsets, key=lambda d: (-offsets[d], _AXIS_ORDER.index(d)))
    for d in goal_dirs:
        if d in obs["actions"]:
            return d
    for d in _PERPENDICULAR[goal_dirs[0]]:
        if d in obs["actions"]:
            return d
    return obs["actions"][0]


class GoalDirectedAgent:
    def act(self, obs, info, env):
        return goal_directed_policy(obs)


def test_random_agent_mostly_fails():
    report = run_episodes("lmrl/Maze-v0", RandomAgent(seed=0), n=200)
    assert report.success_rate <= 0.3, report.summary()


def test_expert_always_succeeds():
    report = run_episodes("lmrl/Maze-v0", ExpertAgent(), n=200)
    assert report.success_rate == 1.0
    assert all(r > 0.8 for r in report.returns)


def test_observation_only_goal_directed_policy_succeeds():
    report = run_episodes("lmrl/Maze-v0", GoalDirectedAgent(), n=200)
    assert report.success_rate >= 0.95, report.summary()


def test_reset_text_and_actions_exact():
    env = make("lmrl/Maze-v0")
    obs, info = env.reset(seed=0)
    assert obs == {
        "text": "You are in a maze. The goal is 3 steps south and 6 steps west. "
        "North: open. East: wall. South: open. West: wall.",
        "actions": ("north", "south"),
    }
    assert info["admissible_actions"] == ("north", "south")
    assert info["success"] is False and info["distance"] == 9


def test_start_and_goal_apart_per_seed():
    env = MazeEnv()
    starts = set()
    for seed in range(100):
        env.reset(seed=seed)
        assert env.pos != env.goal
        assert env._dist[env.goal][env.pos] >= env.min_distance == 3
        starts.add((env.pos, env.goal))
    assert len(starts) > 50  # start and goal really vary with the seed


def test_move_into_wall_costs_a_step_and_says_so():
    env = make("lmrl/Maze-v0")
    obs, _ = env.reset(seed=0)  # east is a wall here
    pos = env.unwrapped.pos
    obs, reward, terminated, truncated, info = env.step("east")
    assert obs["text"].startswith(
        "You hit a wall to the east. The goal is 3 steps south and 6 steps west."
    )
    assert env.unwrapped.pos == pos and reward == pytest.approx(-0.01) and info["steps"] == 1
    assert not terminated and not truncated


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        ("banana", "banana"),
        ("", ""),
        ("x" * 10_000, "x" * 17 + "..."),
        ("\x00\x07\x1b[31m", "[31m"),
    ],
)
def test_unreadable_text_is_explained(action, shown):
    env = make("lmrl/Maze-v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs["text"].startswith(
        f"I could not read a direction in '{shown}'. Say north, east, south or west. The goal is"
    )
    assert reward == pytest.approx(-0.01) and not terminated and not truncated
    assert obs in env.observation_space


def test_free_text_directions():
    assert parse_direction("I will go North now") == "north"
    assert parse_direction("left") == "west"
    assert parse_direction("s") == "south"
    assert parse_direction("go east, then north") == "east"
    assert parse_direction("nowhere") is None


def test_reaching_goal_terminates_with_success():
    env = make("lmrl/Maze-v0")
    obs, info = env.reset(seed=0)
    rewards = []
    while True:
        obs, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated and info["success"] is True
    assert obs == {"text": "You moved west and reached the goal!", "actions": ()}
    assert rewards[-1] == 1.0 and all(r == pytest.approx(-0.01) for r in rewards[:-1])
    assert len(rewards) == 9  # the BFS distance at seed 0
    # stepping after the end changes nothing and pays nothing
    assert env.step("north")[1:4] == (0.0, True, False)


def test_truncation_at_step_limit():
    env = make("lmrl/Maze-v0", max_steps=5)
    env.reset(seed=0)
    results = [env.step("banana") for _ in range(5)]
    assert [r[3] for r in results] == [False] * 4 + [True]
    assert not any(r[2] for r in results)


def test_all_text_is_printable_ascii():
    env = make("lmrl/Maze-v0")
    agent = RandomAgent(3)
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            assert set(obs["text"]) <= set(CHARSET)
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info, env))
            done = terminated or truncated


def test_custom_layout():
    layout = """
    .....
    .#.#.
    .....
    .#.#.
    .....
    """
    env = make("lmrl/Maze-v0", layout=layout, min_distance=4)
    assert (
        run_episodes(
            "lmrl/Maze-v0", ExpertAgent(), n=20, env_kwargs={"layout": layout}
        ).success_rate
        == 1.0
    )
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"layout": "....\n....\n....\n...."},
            "maze layout must be at least 5x5, got 4 rows of widths [4]",
        ),
        (
            {"layout": ".....\n.....\n.....\n.....\n......"},
            "maze layout rows must all have the same width, got widths [5, 5, 5, 5, 6]",
        ),
        (
            {"layout": ".....\n..X..\n.....\n.....\n....."},
            "maze layout may contain only '#' (wall) and '.' (open), got ['X']",
        ),
        (
            {"layout": "..#..\n..#..\n..#..\n..#..\n..#.."},
            "maze layout's open cells must all be connected; cannot reach (row, col) [(0, 3), (0, 4), (1, 3)]",
        ),
        (
            {"layout": "#####\n#.###\n#####\n#####\n#####"},
            "maze layout needs at least 2 open cells, got 1",
        ),
        (
            {"min_distance": 30},
            "min_distance (30) must be <= the maze's longest shortest path (12)",
        ),
        ({"max_steps": 0}, "max_steps must be >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        MazeEnv(**kwargs)


def test_default_layout_has_isolated_pillars():
    rows = [r.strip() for r in DEFAULT_LAYOUT.strip().splitlines()]
    assert len(rows) >= 5 and len(rows[0]) >= 5
    inner = [
        (r, c)
        for r in range(1, len(rows) - 1)
        for c in range(1, len(rows[0]) - 1)
        if rows[r][c] == "#"
    ]
    for r, c in inner:
        neighbours = [
            (r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)
        ]
        assert all(
            rows[nr][nc] == "." or nr in (0, len(rows) - 1) or nc in (0, len(rows[0]) - 1)
            for nr, nc in neighbours
        )


def test_render_ansi():
    env = make("lmrl/Maze-v0", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs["text"]
    assert "A" in env.unwrapped.render_map() and "G" in env.unwrapped.render_map()
