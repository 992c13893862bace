"""Multi-agent training through RLlib's multi-agent API: self-play, separate policies, fixed opponents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_run_config

from lmrl.errors import ConfigError
from lmrl.pipelines.rl.builder import build_algorithm_config
from lmrl.pipelines.rl.loop import train
from lmrl.pipelines.rl.multiagent import RLlibTextMultiAgentEnv, resolve_mapping


def test_self_play_shared_policy_trains_and_exports(ray_session, tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/Referential-v0"}, run={"eval_episodes": 4})
    run = train(cfg)
    plan = json.loads((run / "export" / "multiagent.json").read_text())
    assert plan["policies"] == {"listener_0": "shared", "speaker_0": "shared"}
    meta = json.loads((run / "export" / "shared" / "lmrl.json").read_text())
    assert meta["agents"] == ["listener_0", "speaker_0"]
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["eval"]["per_agent"]) == {"listener_0", "speaker_0"}
    assert summary["eval"]["expert_success_rate"] == 1.0


def test_llm_against_fixed_random_opponent_updates_only_the_llm(ray_session, tiny_model_dir, tmp_path):
    cfg = tiny_run_config(
        tiny_model_dir,
        str(tmp_path),
        env={"id": "lmrl/TicTacToe-v0"},
        policy={"max_candidates": 9},
    )
    cfg.policies = {"learner": {}, "opponent": {"scripted": "random"}}
    cfg.policy_mapping = {"player_0": "learner", "player_1": "opponent"}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        before = {k: np.array(v) for k, v in algo.learner_group.get_weights()["learner"].items()}
        result = algo.train()
        after = algo.learner_group.get_weights()
    finally:
        algo.stop()
    assert set(after) == {"learner"}  # the scripted seat is played inside the env, never trained
    assert all(not np.array_equal(before[k], after["learner"][k]) for k in before)
    assert np.isfinite(result["learners"]["learner"]["policy_loss"])


def test_env_plays_scripted_seats_and_attributes_rewards(tiny_model_dir):
    from lmrl.envs.adapter import AdapterConfig

    env = RLlibTextMultiAgentEnv(
        {
            "env_id": "lmrl/TicTacToe-v0",
            "model_path": tiny_model_dir,
            "adapter": AdapterConfig(max_candidates=9).to_dict(),
            "scripted": {"player_1": "expert"},
        }
    )
    assert env.possible_agents == ["player_0"]
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        assert list(obs) == ["player_0"]
        obs, rewards, terminated, truncated, infos = env.step({"player_0": 0})  # always the first legal cell
        total += rewards.get("player_0", 0.0)
        done = terminated["__all__"] or truncated["__all__"]
    assert infos["player_0"]["outcome"] in ("loss", "draw")  # against the expert, never a win
    assert total <= 0.0


def test_mapping_errors_name_the_problem(tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/TicTacToe-v0"})
    agents = ["player_0", "player_1"]
    cfg.policy_mapping = {"player_2": "shared"}
    with pytest.raises(ConfigError, match=r"policy_mapping names agent `player_2`.*Did you mean `player_[01]`"):
        resolve_mapping(cfg, agents)
    cfg.policies = {"me": {}}
    cfg.policy_mapping = {"player_0": "mee"}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    with pytest.raises(ConfigError, match=r"policy_mapping.player_0 is `mee`, which is not in policies \['me'\]. Did you mean `me`"):
        resolve_mapping(cfg, agents)
    cfg.policies = {"a": {"scripted": "random"}}
    cfg.policy_mapping = {}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    with pytest.raises(ConfigError, match="are all scripted"):
        resolve_mapping(cfg, agents)


class _Episode:
    def __init__(self, id_: str) -> None:
        self.id_ = id_


def test_snapshot_mapping_is_one_draw_per_episode():
    from lmrl.pipelines.rl.multiagent import PolicyMapping

    plan = {"shared": {"modules": ["shared@past0", "shared@past1"], "seats": ["player_0", "player_1"], "every": 1, "games": 0.5}}
    mapping = PolicyMapping({"player_0": "shared", "player_1": "shared"}, plan)
    games = [[mapping(seat, _Episode(f"ep{i}")) for seat in ("player_0", "player_1")] for i in range(400)]
    assert games == [[mapping(seat, _Episode(f"ep{i}")) for seat in ("player_0", "player_1")] for i in range(400)]
    with_snapshot = [g for g in games if g != ["shared", "shared"]]
    assert all(g.count("shared") == 1 for g in with_snapshot)  # the current policy always plays one seat
    assert 150 <= len(with_snapshot) <= 250
    seats = {g.index("shared") for g in with_snapshot}
    modules = {m for g in with_snapshot for m in g if m != "shared"}
    assert seats == {0, 1} and modules == {"shared@past0", "shared@past1"}
    assert mapping("player_0") == "shared"  # no episode: the trained policy


def test_self_play_with_snapshots_freezes_past_copies(ray_session, tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/TicTacToe-v0"}, policy={"max_candidates": 9})
    cfg.policies = {"shared": {"snapshots": 2, "snapshot_every": 1, "snapshot_games": 1.0}}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()

    def weights(module_id):
        return {k: np.array(v) for k, v in algo.learner_group.get_weights([module_id])[module_id].items()}

    try:
        init = weights("shared")
        assert all(np.array_equal(init[k], weights("shared@past1")[k]) for k in init)
        result = algo.train()
        first = weights("shared")
        past0, past1 = weights("shared@past0"), weights("shared@past1")
        runner = algo.env_runner_group.local_env_runner.module["shared@past0"].get_state(inference_only=True)
        algo.train()
        second, past0_after = weights("shared"), weights("shared@past0")
    finally:
        algo.stop()
    assert "policy_loss" in result["learners"]["shared"]
    assert "policy_loss" not in result["learners"].get("shared@past0", {})  # snapshots never train
    assert all(np.array_equal(first[k], past0[k]) for k in first)  # iteration 1 -> slot 0
    assert all(np.array_equal(init[k], past1[k]) for k in init)  # slot 1 untouched yet
    assert all(np.allclose(past0[k], np.asarray(v)) for k, v in runner.items())  # synced to the env runner
    assert all(np.array_equal(past0[k], past0_after[k]) for k in past0)  # iteration 2 went to slot 1
    assert any(not np.array_equal(first[k], second[k]) for k in first)


def test_snapshots_need_a_self_play_policy(tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/TicTacToe-v0"}, policy={"max_candidates": 9})
    cfg.policies = {"learner": {"snapshots": 2}, "opponent": {"scripted": "random"}}
    cfg.policy_mapping = {"player_0": "learner", "player_1": "opponent"}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    with pytest.raises(ConfigError, match=r"policies.learner.snapshots needs `learner` to play at least two seats"):
        build_algorithm_config(cfg, tiny_model_dir)
    with pytest.raises(Exception, match="applies to LLM policies only"):
        type(cfg).model_validate({**cfg.model_dump(by_alias=True), "policies": {"o": {"scripted": "random", "snapshots": 1}}})


def test_grpo_is_for_single_agent_envs(tiny_model_dir, tmp_path):
    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), env={"id": "lmrl/TicTacToe-v0"}, policy={"max_candidates": 9},
        algorithm={"advantage_estimator": "grpo", "group_size": 4},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="grpo needs a single-agent env, got multi-agent `lmrl/TicTacToe-v0`"):
        build_algorithm_config(cfg, tiny_model_dir)


def test_sparring_partner_takes_one_self_play_seat_in_a_share_of_games(tiny_model_dir):
    from lmrl.envs.adapter import AdapterConfig

    env = RLlibTextMultiAgentEnv(
        {
            "env_id": "lmrl/TicTacToe-v0",
            "model_path": tiny_model_dir,
            "adapter": AdapterConfig(max_candidates=9).to_dict(),
            "sparring": [{"seats": ["player_0", "player_1"], "kind": "expert", "games": 0.5}],
        }
    )
    assert env.possible_agents == ["player_0", "player_1"]
    acted, outcomes = [], []
    obs, _ = env.reset(seed=0)
    for _ in range(60):
        seen, done = set(), False
        while not done:
            seen |= set(obs)
            obs, rewards, terminated, truncated, infos = env.step({a: 0 for a in obs})
            done = terminated["__all__"] or truncated["__all__"]
        acted.append(frozenset(seen))
        if len(seen) == 1:
            outcomes.append(infos[next(iter(seen))]["outcome"])
        obs, _ = env.reset()
    alone = [a for a in acted if len(a) == 1]
    assert 15 <= len(alone) <= 45  # about half the games have a sparring partner ...
    assert {next(iter(a)) for a in alone} == {"player_0", "player_1"}  # ... in either seat
    assert set(outcomes) <= {"loss", "draw"}  # the partner is the expert: the first legal cell never wins


def test_sparring_config_errors(tiny_model_dir, tmp_path):
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/TicTacToe-v0"}, policy={"max_candidates": 9})
    cfg.policies = {"learner": {"sparring": "random"}, "opponent": {"scripted": "random"}}
    cfg.policy_mapping = {"player_0": "learner", "player_1": "opponent"}
    cfg = type(cfg).model_validate(cfg.model_dump(by_alias=True))
    with pytest.raises(ConfigError, match=r"policies.learner.sparring needs `learner` to play at least two seats"):
        build_algorithm_config(cfg, tiny_model_dir)
    with pytest.raises(Exception, match="sparring \\('random'\\) applies to LLM policies only"):
        type(cfg).model_validate({**cfg.model_dump(by_alias=True), "policies": {"o": {"scripted": "expert", "sparring": "random"}}})
