"""TextArena adapter: PettingZoo API, lmrl's multi-agent checks, TextArena's rules, bad input."""

from __future__ import annotations

import contextlib
import io
import warnings

import pytest

from lmrl.envs import env_kind, run_episodes
from lmrl.envs.checks import MALFORMED_ACTIONS, check_env_id
from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent, make_aec

pytest.importorskip("textarena")  # the textarena extra; the test extra installs it
from lmrl.envs.suites.textarena import available_moves  # noqa: E402

ID = "textarena/TicTacToe-v0"


def test_registered_as_multiagent():
    assert env_kind(ID) == "aec"


def test_pettingzoo_api_test():
    from pettingzoo.test import api_test

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        api_test(make_aec(ID), num_cycles=50)


def test_multiagent_checks_pass():
    results = check_env_id(ID, episodes=5)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]


def test_available_moves_parsed_from_the_board():
    text = "Current Board:\n 0 | 1 | 2\n\nAvailable Moves: '[0]', '[2]', '[8]'"
    assert available_moves(text) == ("[0]", "[2]", "[8]")
    assert available_moves("no list here") == ()


def test_observation_is_textarenas_and_moves_are_admissible():
    env = make_aec(ID)
    env.reset(seed=0)
    obs = env.observe("player_0")
    assert obs["text"].startswith("You are Player 0 in Tic Tac Toe.")
    assert obs["actions"] == tuple(f"[{i}]" for i in range(9))
    assert env.observe("player_1")["actions"] == ()
    env.step("4")  # the -train variant brackets bare text
    assert "Player 0 placed their symbol (O) in cell 4." in env.observe("player_1")["text"]
    assert "[4]" not in env.observe("player_1")["actions"]


@pytest.mark.parametrize("label", list(MALFORMED_ACTIONS))
def test_first_illegal_move_is_forgiven_second_loses(label):
    env = make_aec(ID)
    env.reset(seed=0)
    env.step(MALFORMED_ACTIONS[label])
    assert env.agent_selection == "player_0"  # tries again
    assert env.rewards["player_0"] == pytest.approx(-0.1)
    assert "was not accepted" in env.observe("player_0")["text"]
    env.step(MALFORMED_ACTIONS[label])
    assert all(env.terminations.values())
    assert env.rewards == {"player_0": pytest.approx(-1.1), "player_1": 1.0}
    assert env.infos["player_0"]["outcome"] == "loss" and env.infos["player_1"]["success"]


def test_expert_never_loses_to_random():
    for expert_seat, other in (("player_0", "player_1"), ("player_1", "player_0")):
        report = run_episodes(
            ID, {expert_seat: ExpertMultiAgent(), other: RandomMultiAgent(0)}, n=10
        )
        assert report.success_rate(expert_seat) == 1.0
        assert report.mean_return(expert_seat) > report.mean_return(other)


def test_one_seat_against_a_scripted_opponent_passes_the_single_agent_checks():
    """The single-agent view lmrl trains a seat with (VersusEnv) takes a TextArena game as it is."""
    from lmrl.envs import catalog

    env_id = "suitetest/ArenaTicTacToeVsRandom-v0"
    catalog.register(
        env_id,
        "lmrl.envs.multiagent.versus:VersusEnv",
        kwargs={"env_id": ID, "seat": "player_1", "opponent": "random"},
    )
    try:
        results = check_env_id(env_id, episodes=5)
        assert all(r.ok for r in results), [(r.name, r.detail) for r in results if not r.ok]
    finally:
        catalog.unregister(env_id)
