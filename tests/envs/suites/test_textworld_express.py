"""TextWorld-Express adapter: lmrl's env checks, the suite's seeds and folds, expert, bad input."""

from __future__ import annotations

import math
import pickle

import pytest

import lmrl
from lmrl.envs import ExpertAgent, RandomAgent, run_episodes
from lmrl.envs.base import HELD_OUT_SEED
from lmrl.envs.checks import MALFORMED_ACTIONS, check_env_id
from lmrl.envs.suites import textworld_express as twx
from lmrl.errors import ConfigError

pytest.importorskip("textworld_express")  # the twx extra; the test extra installs it
if twx._java_problem():
    pytest.skip("TextWorld-Express needs Java on PATH", allow_module_level=True)

EASY = "numLocations=3,includeDoors=0"


def test_ids_registered():
    assert {f"twx/{name}-v0" for name in twx.GAMES} <= set(lmrl.envs.list_envs())


def test_env_checks_pass():
    results = check_env_id("twx/Coin-v0", episodes=3)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]


def test_seed_is_the_suites_game_seed():
    env = lmrl.envs.make("twx/Coin-v0")
    _, info = env.reset(seed=7)
    assert info["game_seed"] == 7
    _, info = env.reset(seed=1007)  # wraps inside the fold's 1000 games
    assert info["game_seed"] == 7
    dev = lmrl.envs.make("twx/Coin-v0", game_fold="dev")
    _, info = dev.reset(seed=7)
    assert info["game_seed"] == 10_007
    _, info = env.reset(options={"game_seed": 123})
    assert info["game_seed"] == 123
    env.close()
    dev.close()


def test_held_out_seeds_play_the_test_fold():
    env = lmrl.envs.make("twx/SimonSays-v0")
    train, info = env.reset(seed=0)
    assert (info["fold"], info["game_seed"]) == ("train", 0)
    held, info = env.reset(seed=HELD_OUT_SEED)
    assert (info["fold"], info["game_seed"]) == ("test", 20_000)
    assert held["text"] != train["text"]
    test = lmrl.envs.make("twx/SimonSays-v0", game_fold="test")
    assert test.reset(seed=0)[0] == held  # the test fold's game 0, as the test fold plays it
    _, info = env.reset(seed=HELD_OUT_SEED + 1007)  # wraps inside the test fold
    assert (info["fold"], info["game_seed"]) == ("test", 20_007)
    _, info = env.reset(seed=HELD_OUT_SEED - 1)  # the last training seed: unchanged
    assert (info["fold"], info["game_seed"]) == ("train", 999)
    _, info = env.reset(options={"game_seed": 5})
    assert (info["fold"], info["game_seed"]) == ("train", 5)
    dev = lmrl.envs.make("twx/SimonSays-v0", game_fold="dev")  # an explicit fold keeps its games
    _, info = dev.reset(seed=HELD_OUT_SEED + 7)
    assert (info["fold"], info["game_seed"]) == ("dev", 10_007)
    for e in (env, test, dev):
        e.close()


def test_held_out_episode_survives_pickling():
    """An env unpickled mid-episode replays its game in the fold it was played in."""
    env = lmrl.envs.make("twx/SimonSays-v0").unwrapped
    env.reset(seed=HELD_OUT_SEED)
    first = env.expert_action()
    env.step(first)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.step(env.expert_action()) == env.step(env.expert_action())
    assert copy.fold == "test" and copy.history == env.history
    env.close()
    copy.close()


def test_same_seed_same_game_different_seed_other_game():
    env = lmrl.envs.make("twx/CookingWorld-v0", game_params=EASY)
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    assert a == b
    assert a["text"] != c["text"] or a["actions"] != c["actions"]
    env.close()


def test_game_params_reach_the_simulator():
    env = lmrl.envs.make("twx/Coin-v0", game_params={"numLocations": 1, "includeDoors": False})
    obs, _ = env.reset(seed=0)
    assert not any(a.startswith("move") for a in obs["actions"])  # one room: nowhere to go
    env.close()


def test_bad_game_params_raise_the_suites_message():
    env = lmrl.envs.make("twx/Coin-v0", game_params="numLocations=99")
    with pytest.raises(ConfigError, match="Number of locations must be less than or equal to 11"):
        env.reset(seed=0)
    env.close()


def test_expert_beats_random():
    kwargs = {"game_params": EASY}
    expert = run_episodes("twx/CookingWorld-v0", ExpertAgent(), n=10, env_kwargs=kwargs)
    rand = run_episodes("twx/CookingWorld-v0", RandomAgent(0), n=10, env_kwargs=kwargs)
    assert expert.success_rate == 1.0
    assert rand.success_rate < 0.5


@pytest.mark.parametrize("label", list(MALFORMED_ACTIONS))
def test_bad_input_is_penalised_and_explained(label):
    env = lmrl.envs.make("twx/Coin-v0", game_params=EASY)
    obs, _ = env.reset(seed=0)
    obs2, reward, terminated, truncated, info = env.step(MALFORMED_ACTIONS[label])
    assert reward == pytest.approx(-0.1)
    assert "is not an admissible action here" in obs2["text"]
    assert obs2["actions"] == obs["actions"]  # nothing happened in the game
    assert info["invalid_action"] and not terminated and not truncated
    assert obs2 in env.observation_space and math.isfinite(reward)
    env.close()


def test_admissible_action_matches_case_and_spacing():
    env = lmrl.envs.make("twx/Coin-v0", game_params=EASY)
    obs, _ = env.reset(seed=0)
    target = next(a for a in obs["actions"] if a.startswith("move"))
    _, reward, _, _, info = env.step("  " + target.upper().replace(" ", "   "))
    assert not info["invalid_action"] and reward == 0.0
    env.close()


def test_step_limit_truncates():
    env = lmrl.envs.make("twx/Coin-v0", max_steps=3)
    env.reset(seed=0)
    flags = [env.step("banana")[3] for _ in range(3)]
    assert flags == [False, False, True]
    env.close()


def test_show_recipe_keeps_the_cookbook_in_view_after_reading_it():
    """CookingWorld shows the recipe once; with show_recipe every later observation ends with it."""
    kwargs = {"game_params": "numLocations=1,numIngredients=1,numDistractorItems=0,includeDoors=0"}
    shown, plain = (
        lmrl.envs.make("twx/CookingWorld-v0", show_recipe=flag, **kwargs) for flag in (True, False)
    )
    texts: dict[bool, list[str]] = {True: [], False: []}
    for env in (shown, plain):
        env.reset(seed=HELD_OUT_SEED)
        for _ in range(5):  # look around, take cookbook, read cookbook, take knife, open fridge
            obs, *_ = env.step(env.unwrapped.expert_action())
            texts[env.unwrapped.show_recipe].append(obs["text"])
    assert (
        "Directions:" in texts[True][2] and texts[True][2] == texts[False][2]
    )  # the reading itself
    assert all("The recipe you read:" not in t for t in texts[True][:3] + texts[False])
    reading = texts[True][2]
    recipe = reading[
        reading.index("Ingredients:") : reading.index("prepare meal") + len("prepare meal")
    ]
    for text in texts[True][3:]:  # after it: the recipe, from its ingredients on, at the end
        assert text.endswith("\nThe recipe you read:\n" + recipe)
    copy = pickle.loads(pickle.dumps(shown.unwrapped))  # replayed mid-episode, recipe kept
    assert copy.step(copy.expert_action())[0]["text"].endswith(
        texts[True][-1].split("The recipe you read:")[1]
    )
    obs, _ = shown.reset(seed=HELD_OUT_SEED)  # a new episode forgets it
    assert "The recipe you read:" not in obs["text"]
    assert "and the recipe, once you have read it" in twx.TextWorldExpressEnv.agent_instructions(
        game="cookingworld", show_recipe=True
    )
    for env in (shown, plain, copy):
        env.close()
