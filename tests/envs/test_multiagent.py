"""Multi-agent envs: PettingZoo API tests, seeding, pickling, the catalog, game rules, agents."""

from __future__ import annotations

import pickle
import re
import warnings

import pytest
from gymnasium import spaces
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

import lmrl  # noqa: F401
from lmrl.envs import (
    MultiAgentReport,
    env_info,
    env_kind,
    list_envs,
    make,
    register,
    run_episodes,
    unregister,
)
from lmrl.envs.checks import check_env_id
from lmrl.envs.multiagent import (
    ExpertMultiAgent,
    RandomMultiAgent,
    make_aec,
    make_parallel,
    multiagent_corpus,
)
from lmrl.envs.multiagent.negotiation import parse_action
from lmrl.envs.multiagent.tictactoe import CELLS, parse_cell
from lmrl.errors import InvalidActionError, RegistrationError, UnknownEnvError

# lmrl's own; suites test theirs
MA_IDS = [e for e in list_envs(kinds=("aec", "parallel")) if e.startswith("lmrl/")]
AEC_IDS = [e for e in MA_IDS if env_kind(e) == "aec"]
PARALLEL_IDS = [e for e in MA_IDS if env_kind(e) == "parallel"]


def test_ids_and_apis():
    assert MA_IDS == ["lmrl/Negotiation-v0", "lmrl/Referential-v0", "lmrl/TicTacToe-v0"]
    assert AEC_IDS == ["lmrl/Negotiation-v0", "lmrl/TicTacToe-v0"]
    assert PARALLEL_IDS == ["lmrl/Referential-v0"]
    assert "lmrl/Maze-v0" not in MA_IDS and env_kind("lmrl/Maze-v0") == "single"


@pytest.mark.parametrize("env_id", AEC_IDS)
def test_pettingzoo_api_test(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice to use Box/Discrete spaces: text is the point
        api_test(make_aec(env_id), num_cycles=200)
        seed_test(lambda: make_aec(env_id), num_cycles=100)


@pytest.mark.parametrize("env_id", PARALLEL_IDS)
def test_pettingzoo_parallel_api_test(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parallel_api_test(make_parallel(env_id), num_cycles=100)
        parallel_seed_test(lambda: make_parallel(env_id), num_cycles=100)
        api_test(make_aec(env_id), num_cycles=100)  # its AEC form too


@pytest.mark.parametrize("env_id", MA_IDS)
def test_spaces_are_text_and_shared(env_id):
    env = make_aec(env_id)
    first = env.possible_agents[0]
    for agent in env.possible_agents:
        assert re.fullmatch(r"[a-z]+_[0-9]+", agent)
        assert env.observation_space(agent) is env.observation_space(first)
        assert env.action_space(agent) is env.action_space(first)
        assert isinstance(env.action_space(agent), spaces.Text)
        obs_space = env.observation_space(agent)
        assert isinstance(obs_space["text"], spaces.Text) and isinstance(
            obs_space["actions"], spaces.Sequence
        )


@pytest.mark.parametrize("env_id", MA_IDS)
def test_checks_all_pass(env_id):
    results = check_env_id(env_id, episodes=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert (
        results[-1].detail.startswith("10 episodes, success rate")
        and "0." not in results[-1].detail
    )


@pytest.mark.parametrize("env_id", MA_IDS)
def test_seeded_determinism_and_variety(env_id):
    a = run_episodes(env_id, RandomMultiAgent(3), n=5, seed=7, keep_transcripts=5)
    b = run_episodes(env_id, RandomMultiAgent(3), n=5, seed=7, keep_transcripts=5)
    assert isinstance(a, MultiAgentReport)
    assert a.transcripts == b.transcripts and a.returns == b.returns
    firsts = {
        run_episodes(env_id, ExpertMultiAgent(), n=1, seed=s, keep_transcripts=1).transcripts[0][0][
            1
        ]
        for s in range(10)
    }
    assert len(firsts) > 1 or env_id == "lmrl/TicTacToe-v0"  # an empty board looks the same


@pytest.mark.parametrize("env_id", MA_IDS)
def test_pickle_mid_episode(env_id):
    env = make_aec(env_id)
    env.reset(seed=2)
    agent = RandomMultiAgent(1)
    obs, *_, info = env.last()
    env.step(agent.act(env.agent_selection, obs, info, env))
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(3):
        name = env.agent_selection
        assert clone.agent_selection == name
        obs, reward, terminated, truncated, info = env.last()
        assert clone.last() == (obs, reward, terminated, truncated, info)
        action = None if terminated or truncated else agent.act(name, obs, info, env)
        env.step(action)
        clone.step(action)
        if not env.agents:
            break


@pytest.mark.parametrize("env_id", AEC_IDS)
@pytest.mark.parametrize("action", [3, None, b"center", ["center"]])
def test_non_text_action_raises(env_id, action):
    env = make_aec(env_id)
    env.reset(seed=0)
    name = type(env.unwrapped).__name__
    with pytest.raises(
        InvalidActionError,
        match=rf"^{name}\.step expects player_0's action as text \(str\), got {type(action).__name__} ",
    ):
        env.step(action)


def test_parallel_non_text_action_raises():
    env = make_parallel("lmrl/Referential-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="expects speaker_0's action as text"):
        env.step({"speaker_0": 3, "listener_0": "wait"})


def test_catalog_errors_and_info():
    with pytest.raises(
        UnknownEnvError,
        match=re.escape("Unknown env id `lmrl/TicTacToe-v1`. Did you mean `lmrl/TicTacToe-v0`?"),
    ):
        make_aec("lmrl/TicTacToe-v1")
    with pytest.raises(
        UnknownEnvError,
        match=re.escape("`lmrl/Maze-v0` is a single-agent env; make it with lmrl.envs.make."),
    ):
        make_aec("lmrl/Maze-v0")
    with pytest.raises(
        UnknownEnvError,
        match=re.escape(
            "`lmrl/TicTacToe-v0` is a turn-based (AEC) env and has no Parallel form; use make_aec('lmrl/TicTacToe-v0')."
        ),
    ):
        make_parallel("lmrl/TicTacToe-v0")
    assert type(make("lmrl/TicTacToe-v0")) is type(make_aec("lmrl/TicTacToe-v0"))
    assert type(make("lmrl/Referential-v0")) is type(make_parallel("lmrl/Referential-v0"))
    info = env_info("lmrl/Referential-v0")
    assert info["kind"] == "parallel" and info["agents"] == ["speaker_0", "listener_0"]
    assert info["default_action_mode"] == "choose" and info["max_episode_steps"] == 2
    for env_id in MA_IDS:
        doc = env_info(env_id)["doc"]
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


def test_register_multiagent_errors():
    with pytest.raises(RegistrationError, match="Malformed env id 'TicTacToe'"):
        register("TicTacToe", "lmrl.envs.multiagent.tictactoe:TicTacToeEnv")
    with pytest.raises(RegistrationError, match="Env id `lmrl/TicTacToe-v0` is already registered"):
        register("lmrl/TicTacToe-v0", "lmrl.envs.multiagent.tictactoe:TicTacToeEnv")
    with pytest.raises(
        RegistrationError, match=r"pettingzoo.AECEnv or pettingzoo.ParallelEnv subclass"
    ):
        register("test/NotMulti-v0", "lmrl.envs.multiagent.agents:RandomMultiAgent")


def test_corpus_is_deterministic_text():
    texts = multiagent_corpus("lmrl/TicTacToe-v0", episodes=3)
    assert texts == multiagent_corpus("lmrl/TicTacToe-v0", episodes=3)
    assert "center" in texts and all(isinstance(t, str) for t in texts)


# --- TicTacToe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cell"),
    [("top left", 0), ("center", 4), ("middle", 4), ("top middle", 1), ("Middle right!", 5),
     ("bottom right", 8), ("b2", 4), ("a3", 6), ("c1", 2), ("7", 6), ("top", None), ("banana", None),
     ("[31m", None)],
)  # fmt: skip
def test_parse_cell(text, cell):
    assert parse_cell(text) == cell


def _play(env, moves):
    for move in moves:
        env.step(move)


def test_tictactoe_game_text_and_win():
    env = make_aec("lmrl/TicTacToe-v0")
    env.reset(seed=0)
    obs, *_ = env.last()
    assert obs == {
        "text": "Tic-tac-toe, you are X. Board: top _ _ _, middle _ _ _, bottom _ _ _. Your move.",
        "actions": CELLS,
    }
    _play(env, ["center", "top left", "a3", "c1"])
    assert env.observe("player_1") == {
        "text": "Tic-tac-toe, you are O. X played bottom left. O played top right. Board: top O _ O, middle _ X _, bottom X _ _. X to move.",
        "actions": (),
    }
    env.step("top middle")  # X
    env.step("top middle")  # O: taken, illegal
    assert env.rewards["player_1"] == pytest.approx(-0.1) and env.agent_selection == "player_1"
    assert "Illegal: top middle is taken. Try again (2 left)." in env.observe("player_1")["text"]
    env.step("middle left")
    env.step("bottom middle")  # X: center, bottom left, top middle, bottom middle -> middle column
    assert all(env.terminations.values())
    assert env.rewards == {"player_0": 1.0, "player_1": -1.0}
    assert env.infos["player_0"] == {"success": True, "outcome": "win", "mark": "X"}
    assert env.infos["player_1"]["outcome"] == "loss" and env.infos["player_1"]["success"] is False
    assert env.observe("player_1")["text"].endswith("You lost.")


def test_tictactoe_forfeit_after_max_illegal():
    env = make_aec("lmrl/TicTacToe-v0", max_illegal=2)
    env.reset(seed=0)
    env.step("banana")
    assert env.agent_selection == "player_0" and not any(env.terminations.values())
    env.step("")
    assert all(env.terminations.values())
    assert env.rewards == {"player_0": pytest.approx(-1.1), "player_1": 1.0}
    assert env.infos["player_0"]["outcome"] == "loss"


def test_tictactoe_expert_never_loses():
    for seats in (
        {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(0)},
        {"player_0": RandomMultiAgent(0), "player_1": ExpertMultiAgent()},
    ):
        report = run_episodes("lmrl/TicTacToe-v0", seats, n=50)
        expert = next(a for a, p in seats.items() if isinstance(p, ExpertMultiAgent))
        assert report.outcome_rate(expert, "loss") == 0.0 and report.success_rate(expert) == 1.0
    both = run_episodes("lmrl/TicTacToe-v0", ExpertMultiAgent(), n=3)
    assert both.outcome_rate("player_0", "draw") == 1.0


# --- Negotiation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("2 books 1 ball", ("propose", (2, 0, 1))), ("nothing", ("propose", (0, 0, 0))),
     ("I want one hat", ("propose", (0, 1, 0))), ("take 9 balls", ("propose", (0, 0, 1))),
     ("accept", ("accept", None)), ("Deal!", ("accept", None)), ("no deal", ("no deal", None)),
     ("I really need the hats", ("say", None)), ("banana", ("say", None))],
)  # fmt: skip
def test_parse_negotiation_action(text, parsed):
    assert parse_action(text, (2, 3, 1)) == parsed


def test_negotiation_deal():
    env = make_aec("lmrl/Negotiation-v0")
    env.reset(seed=0)
    base = env.unwrapped
    counts = base.counts
    assert base.value("player_0", counts) == 10 == base.value("player_1", counts)
    obs = env.observe("player_0")
    assert (
        obs["actions"][-1] == "no deal"
        and "accept" not in obs["actions"]
        and len(obs["actions"]) == 7
    )
    env.step(obs["actions"][0])  # the greediest proposal
    other = env.observe("player_1")
    assert other["actions"][0] == "accept" and "They offer: you get" in other["text"]
    env.step("I would like more")
    assert "They said: 'I would like more'." in env.observe("player_0")["text"]
    env.step(obs["actions"][1])
    env.step("accept")
    assert all(env.terminations.values())
    deal = base.deal
    assert env.rewards == {
        a: pytest.approx(base.value(a, deal[a]) / 10) for a in ("player_0", "player_1")
    }
    assert env.infos["player_1"]["success"] is True


def test_negotiation_no_deal_and_out_of_turns():
    env = make_aec("lmrl/Negotiation-v0")
    env.reset(seed=1)
    env.step("no deal")
    assert all(env.terminations.values()) and env.rewards == {"player_0": 0.0, "player_1": 0.0}
    assert env.infos["player_0"]["success"] is False
    env = make_aec("lmrl/Negotiation-v0", max_turns=2)
    env.reset(seed=1)
    env.step("hello")
    env.step("hi")
    assert (
        all(env.terminations.values())
        and "Out of turns: no deal." in env.observe("player_0")["text"]
    )


def test_negotiation_experts_always_deal():
    report = run_episodes("lmrl/Negotiation-v0", ExpertMultiAgent(), n=50)
    assert report.success_rate("player_0") == 1.0 and report.mean_return("player_0") > 0.5


# --- Referential -----------------------------------------------------------------------------


def test_referential_round():
    env = make_parallel("lmrl/Referential-v0")
    obs, infos = env.reset(seed=0)
    base = env.unwrapped
    assert obs["listener_0"] == {
        "text": "You are the listener. Wait for the speaker's message.",
        "actions": ("wait",),
    }
    assert obs["speaker_0"]["text"].startswith(
        f"You are the speaker. Target: {' '.join(base.target)}."
    )
    assert len(obs["speaker_0"]["actions"]) == 8
    message = base.expert_action("speaker_0")
    obs, rewards, terms, truncs, infos = env.step({"speaker_0": message, "listener_0": "anything"})
    assert rewards == {"speaker_0": 0.0, "listener_0": 0.0} and not any(terms.values())
    assert f"The speaker says: {message}." in obs["listener_0"]["text"]
    assert sorted(obs["listener_0"]["actions"]) == sorted(
        " ".join(o) for o in [base.target, *base.others]
    )
    assert obs["speaker_0"]["actions"] == ("wait",)
    obs, rewards, terms, truncs, infos = env.step(
        {"speaker_0": "wait", "listener_0": " ".join(base.target)}
    )
    assert (
        rewards == {"speaker_0": 1.0, "listener_0": 1.0}
        and all(terms.values())
        and env.agents == []
    )
    assert infos["speaker_0"]["success"] is True and "right!" in obs["listener_0"]["text"]


def test_referential_failure_and_penalties():
    env = make_parallel("lmrl/Referential-v0")
    env.reset(seed=0)
    _, rewards, *_ = env.step({"speaker_0": "", "listener_0": "wait"})
    assert rewards["speaker_0"] == pytest.approx(-0.1)
    _, rewards, terms, _, infos = env.step({"speaker_0": "wait", "listener_0": "banana"})
    assert rewards == {"speaker_0": 0.0, "listener_0": pytest.approx(-0.1)} and all(terms.values())
    assert infos["listener_0"]["success"] is False


def test_referential_chance_and_experts():
    random = run_episodes("lmrl/Referential-v0", RandomMultiAgent(0), n=200)
    assert 0.15 < random.success_rate("listener_0") < 0.4  # chance is 1/4
    assert (
        run_episodes("lmrl/Referential-v0", ExpertMultiAgent(), n=50).success_rate("speaker_0")
        == 1.0
    )


# --- one seat as a single-agent env ----------------------------------------------------------


@pytest.fixture
def versus_id():
    env_id = "test/TicTacToeVsRandom-v0"
    register(
        env_id,
        "lmrl.envs.multiagent.versus:VersusEnv",
        kwargs={"env_id": "lmrl/TicTacToe-v0", "opponent": "random"},
    )
    yield env_id
    unregister(env_id)


def test_versus_env_passes_the_single_agent_checks(versus_id):
    results = check_env_id(versus_id, episodes=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    expert = run_episodes(versus_id, lmrl.envs.ExpertAgent(), n=30)
    assert expert.success_rate == 1.0 and expert.mean_return > 0.8


def test_versus_env_second_seat_and_expert_opponent():
    from lmrl.envs.multiagent.versus import VersusEnv

    env = VersusEnv("lmrl/TicTacToe-v0", seat="player_1", opponent="expert")
    obs, info = env.reset(seed=0)
    assert obs["text"].startswith("Tic-tac-toe, you are O. X played center.")
    env = VersusEnv("lmrl/Referential-v0", seat="listener_0", opponent="expert")
    obs, info = env.reset(seed=0)
    assert obs["text"].startswith("You are the listener. The speaker says:")  # the wait was played
    obs, reward, terminated, truncated, info = env.step(env.expert_action())
    assert reward == 1.0 and terminated and info["success"] is True
