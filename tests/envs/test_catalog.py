"""The env catalog: kinds, registration errors, unknown ids, plugins, Gymnasium integration."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv

import lmrl  # noqa: F401  (registers the catalog)
from lmrl.envs import ENV_KINDS, catalog, env_info, env_kind, list_envs, make, register, unregister
from lmrl.envs.maze import MazeEnv
from lmrl.errors import RegistrationError, UnknownEnvError

BUILTIN = [
    "lmrl/Arithmetic-v0",
    "lmrl/CustomerSupport-v0",
    "lmrl/GuessNumber-v0",
    "lmrl/Maze-v0",
    "lmrl/SentimentSteer-v0",
    "lmrl/TwentyQuestions-v0",
    "lmrl/Wordle-v0",
]


class DiscreteSpacesEnv(gym.Env):
    """An env with numeric spaces, which the catalog must refuse."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 0.0, True, False, {}


class TextObsDiscreteActionEnv(DiscreteSpacesEnv):
    """Text observations but a numeric action space."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Text(10)


class NotAnEnv:
    """Not a gymnasium.Env."""


def register_plugin_envs() -> None:
    """A plugin entry point of the callable kind."""
    register("plugin/PluginMaze-v0", "lmrl.envs.maze:MazeEnv", kwargs={"max_steps": 7})


def broken_plugin() -> None:
    raise RuntimeError("plugin exploded")


@pytest.fixture
def scratch_ids():
    """Ids a test registers; unregistered afterwards."""
    ids: list[str] = []
    yield ids
    for env_id in ids:
        if env_id in catalog._CATALOG:
            unregister(env_id)
        gym.registry.pop(env_id, None)


def test_builtin_ids_listed():
    assert set(BUILTIN) <= set(list_envs())
    assert list_envs() == sorted(list_envs())


@pytest.mark.parametrize(
    ("env_id", "kind", "cls"),
    [
        ("lmrl/Maze-v0", "single", gym.Env),
        ("lmrl/TicTacToe-v0", "aec", AECEnv),
        ("lmrl/Referential-v0", "parallel", ParallelEnv),
    ],
)
def test_make_returns_the_object_of_the_ids_kind(env_id, kind, cls):
    """One registry: every registered id, of any kind, is made by ``make``."""
    assert env_kind(env_id) == kind and env_info(env_id)["kind"] == kind
    env = make(env_id)
    try:
        assert isinstance(env, cls)
        if kind == "single":
            obs, info = env.reset(seed=0)
            assert obs in env.observation_space
        else:
            env.reset(seed=0)
            assert env.agents == env.possible_agents == env_info(env_id)["agents"]
    finally:
        env.close()


def test_list_envs_by_kind():
    assert list_envs() == list_envs(kinds=("single",))  # the default: Gymnasium envs only
    multi = list_envs(kinds=("aec", "parallel"))
    assert {"lmrl/TicTacToe-v0", "lmrl/Negotiation-v0", "lmrl/Referential-v0"} <= set(multi)
    assert not set(multi) & set(list_envs())
    assert list_envs(kinds=ENV_KINDS) == sorted(list_envs() + multi)
    assert "lmrl/TicTacToe-v0" not in gym.registry  # only single-agent envs are Gymnasium's


def test_unknown_multiagent_id_did_you_mean():
    with pytest.raises(
        UnknownEnvError,
        match=re.escape(
            "Unknown env id `lmrl/TicTacToe-v1`. Did you mean `lmrl/TicTacToe-v0`? "
            "Run `lmrl envs list` to see all ids."
        ),
    ):
        make("lmrl/TicTacToe-v1")


def test_register_a_multiagent_env_with_kwargs(scratch_ids):
    scratch_ids.append("test/QuickTicTacToe-v0")
    register(
        "test/QuickTicTacToe-v0",
        "lmrl.envs.multiagent.tictactoe:TicTacToeEnv",
        kwargs={"max_illegal": 1},
    )
    assert env_kind("test/QuickTicTacToe-v0") == "aec"
    assert "test/QuickTicTacToe-v0" not in gym.registry
    env = make("test/QuickTicTacToe-v0")
    env.reset(seed=0)
    env.step("nowhere")  # one illegal move forfeits with max_illegal=1
    assert all(env.terminations.values()) and env.infos["player_0"]["outcome"] == "loss"
    assert make("test/QuickTicTacToe-v0", max_illegal=3).max_illegal == 3  # make's kwargs win
    unregister("test/QuickTicTacToe-v0")
    assert "test/QuickTicTacToe-v0" not in list_envs(kinds=ENV_KINDS)


def test_multiagent_env_refuses_a_time_limit(scratch_ids):
    scratch_ids.append("test/TimedTicTacToe-v0")
    with pytest.raises(
        RegistrationError,
        match=re.escape(
            "max_episode_steps applies to single-agent envs; `test/TimedTicTacToe-v0` is a "
            "multi-agent (aec) env"
        ),
    ):
        register(
            "test/TimedTicTacToe-v0",
            "lmrl.envs.multiagent.tictactoe:TicTacToeEnv",
            max_episode_steps=5,
        )
    assert "test/TimedTicTacToe-v0" not in list_envs(kinds=ENV_KINDS)


def test_gymnasium_make_after_import_lmrl_in_fresh_interpreter():
    code = (
        "import lmrl, gymnasium\n"
        "env = gymnasium.make('lmrl/Maze-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs['text'].startswith('You are in a maze.'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_gymnasium_make_in_process():
    env = gym.make("lmrl/Maze-v0")
    assert isinstance(env.unwrapped, MazeEnv)
    obs, _ = env.reset(seed=1)
    assert obs in env.observation_space


def test_unknown_id_message_exact():
    expected = (
        "Unknown env id `lmrl/Maz-v0`. Did you mean `lmrl/Maze-v0`? "
        "Run `lmrl envs list` to see all ids."
    )
    with pytest.raises(UnknownEnvError, match="^" + re.escape(expected) + "$"):
        make("lmrl/Maz-v0")
    with pytest.raises(UnknownEnvError, match=re.escape(expected)):
        env_info("lmrl/Maz-v0")


def test_unknown_id_without_suggestion():
    expected = "Unknown env id `zzz/Nothing-v9`. Run `lmrl envs list` to see all ids."
    with pytest.raises(UnknownEnvError, match="^" + re.escape(expected) + "$"):
        make("zzz/Nothing-v9")


def test_unknown_env_error_is_key_error_with_plain_str():
    with pytest.raises(KeyError) as info:
        make("lmrl/Maze-v7")
    assert str(info.value).startswith("Unknown env id `lmrl/Maze-v7`. Did you mean `lmrl/Maze-v0`?")


@pytest.mark.parametrize(
    "bad_id", ["Maze-v0", "lmrl/Maze", "lmrl/Maze-0", "lmrl/-v0", "a/b/C-v0", "", "lmrl/Ma ze-v0"]
)
def test_malformed_id(bad_id, scratch_ids):
    scratch_ids.append(bad_id)
    expected = (
        f"Malformed env id {bad_id!r}: ids must have the form `namespace/Name-vN`, "
        "for example `lmrl/Maze-v0`."
    )
    with pytest.raises(RegistrationError, match="^" + re.escape(expected) + "$"):
        register(bad_id, "lmrl.envs.maze:MazeEnv")


def test_duplicate_id():
    with pytest.raises(
        RegistrationError, match=re.escape("Env id `lmrl/Maze-v0` is already registered")
    ):
        register("lmrl/Maze-v0", "lmrl.envs.maze:MazeEnv")


def test_duplicate_of_an_id_registered_with_gymnasium_directly(scratch_ids):
    scratch_ids.append("test/Direct-v0")
    gym.register(id="test/Direct-v0", entry_point="lmrl.envs.maze:MazeEnv")
    with pytest.raises(
        RegistrationError, match=re.escape("Env id `test/Direct-v0` is already registered;")
    ):
        register("test/Direct-v0", "lmrl.envs.maze:MazeEnv")


def test_duplicate_after_first_registration(scratch_ids):
    scratch_ids.append("test/Dup-v0")
    register("test/Dup-v0", "lmrl.envs.maze:MazeEnv")
    with pytest.raises(
        RegistrationError,
        match=r"^Env id `test/Dup-v0` is already registered \(entry point 'lmrl.envs.maze:MazeEnv'\); choose another id or bump its version, for example `-v1`.$",
    ):
        register("test/Dup-v0", "lmrl.envs.maze:MazeEnv")


def test_unimportable_entry_point(scratch_ids):
    scratch_ids.append("test/Missing-v0")
    with pytest.raises(
        RegistrationError,
        match=re.escape(
            "Cannot import module `no_such_pkg_xyz.envs` of entry point 'no_such_pkg_xyz.envs:Env' "
            "for `test/Missing-v0`: ModuleNotFoundError: No module named 'no_such_pkg_xyz'."
        ),
    ):
        register("test/Missing-v0", "no_such_pkg_xyz.envs:Env")
    assert "test/Missing-v0" not in list_envs()
    assert "test/Missing-v0" not in gym.registry


def test_entry_point_missing_attribute(scratch_ids):
    scratch_ids.append("test/NoAttr-v0")
    with pytest.raises(
        RegistrationError, match=re.escape("Module `lmrl.envs.maze` has no attribute `Nope`")
    ):
        register("test/NoAttr-v0", "lmrl.envs.maze:Nope")


@pytest.mark.parametrize("entry_point", ["lmrl.envs.maze.MazeEnv", "lmrl.envs.maze:", MazeEnv])
def test_malformed_entry_point(entry_point, scratch_ids):
    scratch_ids.append("test/BadEntry-v0")
    with pytest.raises(RegistrationError, match="must be a string 'module:Class'"):
        register("test/BadEntry-v0", entry_point)


def test_entry_point_not_an_env(scratch_ids):
    scratch_ids.append("test/NotEnv-v0")
    with pytest.raises(
        RegistrationError,
        match="must name a gymnasium.Env, pettingzoo.AECEnv or pettingzoo.ParallelEnv subclass",
    ):
        register("test/NotEnv-v0", f"{__name__}:NotAnEnv")


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            "DiscreteSpacesEnv",
            "has action space Discrete(2); lmrl envs need a gymnasium.spaces.Text action space",
        ),
        ("TextObsDiscreteActionEnv", "has action space Discrete(2)"),
    ],
)
def test_non_text_spaces_refused_on_first_make(cls, message, scratch_ids):
    env_id = f"test/{cls}-v0"
    scratch_ids.append(env_id)
    register(env_id, f"{__name__}:{cls}")  # spaces live on instances: checked when first made
    with pytest.raises(RegistrationError, match=re.escape(f"Env `{env_id}` {message}")):
        make(env_id)


def test_non_text_observation_refused():
    env = DiscreteSpacesEnv()
    env.action_space = spaces.Text(5)
    with pytest.raises(
        RegistrationError,
        match="has observation space Discrete\\(3\\); lmrl envs need a gymnasium.spaces.Text observation",
    ):
        catalog.check_text_spaces(env, "test/X-v0")
    env.observation_space = spaces.Dict({"text": spaces.Discrete(2)})
    with pytest.raises(RegistrationError, match="observation space Dict"):
        catalog.check_text_spaces(env, "test/X-v0")
    env.observation_space = spaces.Dict({"text": spaces.Text(5)})
    catalog.check_text_spaces(env, "test/X-v0")  # accepted


def test_bad_max_episode_steps(scratch_ids):
    scratch_ids.append("test/Steps-v0")
    with pytest.raises(
        RegistrationError,
        match="max_episode_steps of `test/Steps-v0` must be a positive int or None, got 0",
    ):
        register("test/Steps-v0", "lmrl.envs.maze:MazeEnv", max_episode_steps=0)


def test_register_with_kwargs_and_time_limit(scratch_ids):
    scratch_ids.append("test/ShortMaze-v0")
    register(
        "test/ShortMaze-v0", "lmrl.envs.maze:MazeEnv", kwargs={"max_steps": 30}, max_episode_steps=3
    )
    env = make("test/ShortMaze-v0")
    assert env.unwrapped.max_steps == 30
    env.reset(seed=0)
    for _ in range(3):
        _, _, terminated, truncated, _ = env.step("banana")
    assert truncated and not terminated  # gymnasium's TimeLimit cut it at 3
    info = env_info("test/ShortMaze-v0")
    assert info["max_episode_steps"] == 3 and info["kwargs"] == {"max_steps": 30}
    assert make("test/ShortMaze-v0", max_steps=5).unwrapped.max_steps == 5  # make kwargs override


def test_env_info():
    info = env_info("lmrl/Maze-v0")
    assert info["id"] == "lmrl/Maze-v0"
    assert info["entry_point"] == "lmrl.envs.maze:MazeEnv"
    assert info["default_action_mode"] == "choose"
    assert info["max_episode_steps"] == 16
    assert info["kwargs"] == {}
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
    modes = {env_id: env_info(env_id)["default_action_mode"] for env_id in BUILTIN}
    assert modes == {
        "lmrl/Arithmetic-v0": "generate",
        "lmrl/CustomerSupport-v0": "choose",
        "lmrl/GuessNumber-v0": "generate",
        "lmrl/Maze-v0": "choose",
        "lmrl/SentimentSteer-v0": "generate",
        "lmrl/TwentyQuestions-v0": "choose",
        "lmrl/Wordle-v0": "generate",
    }


def test_register_builtin_envs_is_idempotent():
    before = list_envs()
    catalog.register_builtin_envs()
    lmrl.envs.register_builtin_envs()
    assert list_envs() == before


def _fake_entry_points(*values: str):
    eps = [
        importlib.metadata.EntryPoint(name=f"p{i}", value=v, group=catalog.ENTRY_POINT_GROUP)
        for i, v in enumerate(values)
    ]

    def entry_points(**kwargs):
        assert kwargs == {"group": catalog.ENTRY_POINT_GROUP}
        return eps

    return entry_points


def test_plugins_from_entry_point_group(monkeypatch, scratch_ids):
    scratch_ids.append("plugin/PluginMaze-v0")
    monkeypatch.setattr(catalog, "_builtins_done", False)
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        _fake_entry_points(
            f"{__name__}:register_plugin_envs", "lmrl.envs.maze", f"{__name__}:broken_plugin"
        ),
    )
    with pytest.warns(
        RuntimeWarning, match="Skipping lmrl env plugin 'p2'.*RuntimeError: plugin exploded"
    ):
        catalog.register_builtin_envs()
    assert "plugin/PluginMaze-v0" in list_envs()
    assert make("plugin/PluginMaze-v0").unwrapped.max_steps == 7
    catalog.register_builtin_envs()  # idempotent: the plugin is not registered twice
