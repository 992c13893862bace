"""reasoning-gym adapter: the dataset's own seeds and scorer, exclusions, expert, bad input."""

from __future__ import annotations

import math
import pickle

import pytest

import lmrl
from lmrl.envs import ExpertAgent, RandomAgent, run_episodes
from lmrl.envs.base import HELD_OUT_SEED
from lmrl.envs.checks import MALFORMED_ACTIONS, check_env_id
from lmrl.errors import ConfigError

reasoning_gym = pytest.importorskip("reasoning_gym")  # the reasoning-gym extra (test extra)
from lmrl.envs.suites.reasoning_gym import (  # noqa: E402
    DATASETS,
    EXCLUDED,
    ReasoningGymEnv,
    audit_dataset,
    clean_answer,
    to_charset,
)


def test_ids_registered_and_exclusions_left_out():
    ids = set(lmrl.envs.list_envs())
    assert {f"rg/{name}-v0" for name in DATASETS} <= ids
    assert not {f"rg/{name}-v0" for name in EXCLUDED} & ids
    assert "game_of_life_halting" in EXCLUDED
    assert set(DATASETS) | set(EXCLUDED) == set(reasoning_gym.factory.DATASETS)


def test_excluded_dataset_refused_with_the_reason():
    with pytest.raises(ConfigError, match="reward-hackable: any non-empty answer scores 1.0"):
        ReasoningGymEnv(dataset="game_of_life_halting")


@pytest.mark.parametrize(
    ("name", "constant"), [("game_of_life_halting", "x"), ("puzzle24", "1*2*3*4")]
)
def test_excluded_scorers_really_are_hackable(name, constant):
    """Why they are left out: one constant answer scores 1.0 on every problem."""
    ds = reasoning_gym.create_dataset(name, size=20, seed=0)
    assert all(ds.score_answer(constant, entry=ds[i]) == 1.0 for i in range(20))


def test_env_checks_pass():
    results = check_env_id("rg/leg_counting-v0", episodes=5)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]


def test_seed_is_the_datasets_index_and_reward_is_its_scorer():
    env = lmrl.envs.make("rg/leg_counting-v0", config={"min_animals": 2, "max_animals": 4})
    obs, info = env.reset(seed=11)
    ds = reasoning_gym.create_dataset(
        "leg_counting", size=10_000, seed=0, min_animals=2, max_animals=4
    )
    entry = ds[11]
    assert obs["text"] == entry["question"] and obs["actions"] == () and info["index"] == 11
    wrong = str(int(entry["answer"]) + 2)
    _, reward, terminated, _, info = env.step(wrong)
    assert reward == ds.score_answer(wrong, entry=entry) and terminated and not info["success"]
    env.reset(seed=11)
    _, reward, _, _, info = env.step(f"  {entry['answer']} ")
    assert reward == 1.0 and info["success"]
    env.close()


def test_held_out_seeds_index_the_held_out_dataset():
    env = lmrl.envs.make("rg/leg_counting-v0", size=50)
    obs, info = env.reset(seed=HELD_OUT_SEED)
    train = reasoning_gym.create_dataset("leg_counting", size=50, seed=0)
    held = reasoning_gym.create_dataset("leg_counting", size=50, seed=HELD_OUT_SEED)
    assert obs["text"] == held[0]["question"] != train[0]["question"]
    assert (info["split"], info["dataset_seed"], info["index"]) == ("held_out", HELD_OUT_SEED, 0)
    assert env.unwrapped.expert_action() == str(held[0]["answer"])
    assert env.step(str(held[0]["answer"]))[1] == 1.0  # scored against the held-out problem
    assert not {held[i]["question"] for i in range(50)} & {train[i]["question"] for i in range(50)}
    _, info = env.reset(seed=HELD_OUT_SEED + 57)  # wraps inside the held-out dataset
    assert (info["split"], info["index"]) == ("held_out", 7)
    obs, info = env.reset(seed=HELD_OUT_SEED - 1)  # the last training seed: unchanged
    assert obs["text"] == train[(HELD_OUT_SEED - 1) % 50]["question"]
    assert (info["split"], info["dataset_seed"], info["index"]) == ("train", 0, 49)
    other = lmrl.envs.make("rg/leg_counting-v0", size=50, dataset_seed=3)
    _, info = other.reset(seed=HELD_OUT_SEED)
    assert info["dataset_seed"] == 3 + HELD_OUT_SEED == other.unwrapped.held_out_dataset_seed


def test_held_out_env_pickles_without_its_datasets():
    env = lmrl.envs.make("rg/leg_counting-v0", size=50).unwrapped
    env.reset(seed=HELD_OUT_SEED + 2)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.entry == env.entry and copy.episode_dataset is env.episode_dataset  # the cache


def test_dataset_config_may_hold_lists_as_yaml_writes_them():
    """A dataset config with a list value (``operators: ["+", "-"]`` from a YAML config) builds the
    dataset, keeps it held-out and pickled, and really restricts the problems."""
    config = {"min_terms": 2, "max_terms": 2, "max_digits": 2, "operators": ["+", "-"], "allow_negation": False}
    env = lmrl.envs.make("rg/basic_arithmetic-v0", config=config).unwrapped
    questions = [env.reset(seed=s)[0]["text"] for s in (*range(20), HELD_OUT_SEED)]
    assert all(("*" not in q and "/" not in q) for q in questions)
    assert pickle.loads(pickle.dumps(env)).entry == env.entry
    with pytest.raises(ConfigError, match="could not create dataset 'basic_arithmetic'"):
        lmrl.envs.make("rg/basic_arithmetic-v0", config={"operators": ["^"]})


def test_partial_credit_off_rewards_only_correct_answers():
    """The default scorer gives len(ref) / len(answer) when the reference is inside the answer
    ('-40' for -4 scores 2/3): ``partial_credit=False`` rewards a correct answer only."""
    for partial, expected in ((True, 2 / 3), (False, 0.0)):
        env = lmrl.envs.make("rg/basic_arithmetic-v0", partial_credit=partial)
        env.reset(seed=1)
        assert env.unwrapped.expert_action() == "-4"  # Calculate 5 - 3 - 6.
        _, reward, _, _, info = env.step("-40")
        assert reward == pytest.approx(expected) and info["score"] == pytest.approx(2 / 3)
        env.reset(seed=1)
        assert env.step("-4")[1] == 1.0


def test_grpo_group_same_seed_same_problem():
    envs = [lmrl.envs.make("rg/chain_sum-v0") for _ in range(4)]
    texts = {env.reset(seed=3)[0]["text"] for env in envs}
    assert len(texts) == 1


def test_expert_beats_random():
    expert = run_episodes("rg/basic_arithmetic-v0", ExpertAgent(), n=20)
    rand = run_episodes("rg/basic_arithmetic-v0", RandomAgent(0), n=20)
    assert expert.success_rate == 1.0
    assert rand.success_rate < 0.3


def test_multiline_answers_keep_their_lines():
    env = lmrl.envs.make("rg/rotate_matrix-v0")
    env.reset(seed=0)
    answer = env.unwrapped.expert_action()
    assert "\n" in answer
    _, reward, *_ = env.step(answer)
    assert reward == 1.0
    assert clean_answer("1  2\x00\n 3 4\r\n") == "1 2\n3 4"
    env.close()


def test_questions_in_printable_charset():
    assert to_charset("x \u2192 y, 90\u00b0, \u222b x dx, caf\u00e9, \u2603") == (
        "x -> y, 90 degrees, integral  x dx, cafe, ?"
    )
    env = lmrl.envs.make("rg/simple_geometry-v0")
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space and "degrees" in obs["text"]
    env.close()


def test_audit_of_a_registered_dataset():
    report = audit_dataset("leg_counting", n=10)
    assert report["expert"] == 1.0 and report["best_constant"][0] < 0.9


@pytest.mark.parametrize("label", list(MALFORMED_ACTIONS))
def test_bad_input_scores_zero_and_is_explained(label):
    env = lmrl.envs.make("rg/leg_counting-v0")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(MALFORMED_ACTIONS[label])
    assert reward == 0.0 and terminated and not info["success"]
    assert "scores 0" in obs["text"]
    assert obs in env.observation_space and math.isfinite(reward)
    env.close()
