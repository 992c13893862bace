"""The env catalog: the one registry of lmrl text envs, single- and multi-agent.

Every env is registered with a string entry point (``"module:Class"``) and
the catalog records its *kind*, read from the class: ``"single"`` (a
``gymnasium.Env``), ``"aec"`` (a PettingZoo ``AECEnv``, turn-based) or
``"parallel"`` (a PettingZoo ``ParallelEnv``). :func:`make` returns the
kind's own object for every id. Single-agent envs are also registered with
Gymnasium, so ``import lmrl; gymnasium.make("lmrl/Maze-v0")`` works.

Third-party packages add envs through the ``lmrl.envs`` entry-point group.
Each entry point is either a callable, called once with no arguments, that
calls :func:`register`, or a module whose import registers its envs::

    # pyproject.toml of a plugin package
    [project.entry-points."lmrl.envs"]
    my_envs = "my_package.envs:register_all"   # a callable
    more_envs = "my_package.more_envs"         # a module that registers on import

Without a plugin, an id may name the module that registers it, as with
``gymnasium.make("module:Env-v0")``: ``make("my_envs:myorg/Shop-v0")`` imports
``my_envs`` (from ``sys.path``, e.g. ``PYTHONPATH``) and then makes
``myorg/Shop-v0``. Every function that takes an id (``make``, ``env_info``,
``lmrl envs check/play/rollout``, ``env.id`` of a run config) accepts this form.

Example:
    >>> import lmrl
    >>> from lmrl.envs import catalog
    >>> env = catalog.make("lmrl/Maze-v0")
    >>> obs, info = env.reset(seed=0)
    >>> catalog.env_kind("lmrl/TicTacToe-v0"), catalog.env_kind("lmrl/Referential-v0")
    ('aec', 'parallel')
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import gymnasium as gym
from gymnasium import spaces

from lmrl.errors import RegistrationError, UnknownEnvError, did_you_mean

#: The entry-point group third-party packages use to add envs.
ENTRY_POINT_GROUP = "lmrl.envs"

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[A-Za-z][A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*-v\d+$")
_ENTRY_POINT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

BUILTIN_ENVS: dict[str, str] = {
    "lmrl/Maze-v0": "lmrl.envs.maze:MazeEnv",
    "lmrl/GuessNumber-v0": "lmrl.envs.guess_number:GuessNumberEnv",
    "lmrl/CustomerSupport-v0": "lmrl.envs.customer_support:CustomerSupportEnv",
    "lmrl/Wordle-v0": "lmrl.envs.wordle:WordleEnv",
    "lmrl/TwentyQuestions-v0": "lmrl.envs.twenty_questions:TwentyQuestionsEnv",
    "lmrl/Arithmetic-v0": "lmrl.envs.arithmetic:ArithmeticEnv",
    "lmrl/SentimentSteer-v0": "lmrl.envs.sentiment_steer:SentimentSteerEnv",
    "lmrl/Switches-v0": "lmrl.envs.switches:SwitchesEnv",
    "lmrl/TicTacToe-v0": "lmrl.envs.multiagent.tictactoe:TicTacToeEnv",
    "lmrl/Negotiation-v0": "lmrl.envs.multiagent.negotiation:NegotiationEnv",
    "lmrl/Referential-v0": "lmrl.envs.multiagent.referential:ReferentialEnv",
}

#: What an env is: a Gymnasium env, a turn-based PettingZoo env, or a simultaneous-move one.
EnvKind = Literal["single", "aec", "parallel"]
#: The kinds, in the order ``lmrl envs list`` shows them.
ENV_KINDS: tuple[EnvKind, ...] = get_args(EnvKind)


@dataclass
class EnvEntry:
    """One catalog entry.

    Attributes:
        env_id: The id, ``namespace/Name-vN``.
        entry_point: ``"module:Class"``.
        env_class: The imported class.
        kind: ``"single"``, ``"aec"`` or ``"parallel"``, read from the class.
        kwargs: Default constructor keyword arguments.
        max_episode_steps: Gymnasium ``TimeLimit`` steps, or ``None`` when the env truncates itself.
    """

    env_id: str
    entry_point: str
    env_class: type
    kind: EnvKind
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None


_CATALOG: dict[str, EnvEntry] = {}
#: Ids whose optional dependencies are missing: id -> one line saying what to install.
_UNAVAILABLE: dict[str, str] = {}
_builtins_done = False


def _import_entry_point(env_id: str, entry_point: Any) -> tuple[type, EnvKind]:
    """Imports ``"module:Class"`` and reads its kind; raises if it is no env class."""
    if not isinstance(entry_point, str) or not _ENTRY_POINT_RE.match(entry_point):
        raise RegistrationError(
            f"Entry point {entry_point!r} of `{env_id}` must be a string 'module:Class', "
            "for example 'lmrl.envs.maze:MazeEnv'."
        )
    module_name, attr = entry_point.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise RegistrationError(
            f"Cannot import module `{module_name}` of entry point '{entry_point}' for `{env_id}`: "
            f"{type(exc).__name__}: {exc}. Install the package that provides it or fix the entry point."
        ) from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise RegistrationError(
            f"Module `{module_name}` has no attribute `{attr}` (entry point '{entry_point}' for `{env_id}`)."
        )
    if inspect.isclass(cls) and issubclass(cls, gym.Env):
        return cls, "single"
    from pettingzoo import AECEnv, ParallelEnv

    if inspect.isclass(cls) and issubclass(cls, AECEnv):
        return cls, "aec"
    if inspect.isclass(cls) and issubclass(cls, ParallelEnv):
        return cls, "parallel"
    raise RegistrationError(
        f"Entry point '{entry_point}' for `{env_id}` must name a gymnasium.Env, pettingzoo.AECEnv "
        f"or pettingzoo.ParallelEnv subclass, got {cls!r}."
    )


def check_text_spaces(env: gym.Env, env_id: str = "") -> None:
    """Checks that an env's spaces are text spaces.

    The action space must be :class:`gymnasium.spaces.Text`; the observation
    space ``Text`` or a ``Dict`` with a ``"text"`` entry that is ``Text``.

    Args:
        env: The env (wrapped or not).
        env_id: Its id, for the message.

    Raises:
        RegistrationError: A space is not text.
    """
    name = f"`{env_id}`" if env_id else type(env.unwrapped).__name__
    if not isinstance(env.action_space, spaces.Text):
        raise RegistrationError(
            f"Env {name} has action space {env.action_space}; lmrl envs need a gymnasium.spaces.Text "
            "action space (subclass lmrl.envs.TextEnv)."
        )
    obs = env.observation_space
    ok = isinstance(obs, spaces.Text) or (
        isinstance(obs, spaces.Dict) and isinstance(obs.spaces.get("text"), spaces.Text)
    )
    if not ok:
        raise RegistrationError(
            f"Env {name} has observation space {obs}; lmrl envs need a gymnasium.spaces.Text observation "
            "or a Dict with a 'text' Text entry (subclass lmrl.envs.TextEnv)."
        )


def register(
    env_id: str,
    entry_point: str,
    *,
    kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
) -> None:
    """Registers a text env with the lmrl catalog (and a single-agent one with Gymnasium).

    The entry point is imported now (so a typo fails here, not at training
    time) and its class decides the kind; a single-agent env's spaces are
    checked each time :func:`make` makes it.

    Args:
        env_id: ``namespace/Name-vN``, for example ``"myorg/Shop-v0"``.
        entry_point: ``"module:Class"``: a ``gymnasium.Env`` subclass with text spaces, or a
            PettingZoo ``AECEnv`` / ``ParallelEnv`` subclass (a multi-agent env).
        kwargs: Default keyword arguments for the constructor.
        max_episode_steps: If set, Gymnasium wraps the env in ``TimeLimit`` (single-agent
            envs only). Leave ``None`` for envs that truncate themselves.

    Raises:
        RegistrationError: Malformed or duplicate id, or an entry point that
            cannot be imported or is not an env class.

    Example:
        >>> register("myorg/Maze-v0", "lmrl.envs.maze:MazeEnv", kwargs={"max_steps": 20})  # doctest: +SKIP
    """
    if not isinstance(env_id, str) or not _ID_RE.match(env_id):
        raise RegistrationError(
            f"Malformed env id {env_id!r}: ids must have the form `namespace/Name-vN`, "
            "for example `lmrl/Maze-v0`."
        )
    if env_id in _CATALOG or env_id in gym.registry:
        raise RegistrationError(
            f"Env id `{env_id}` is already registered"
            + (f" (entry point '{_CATALOG[env_id].entry_point}')" if env_id in _CATALOG else "")
            + "; choose another id or bump its version, for example `-v1`."
        )
    if max_episode_steps is not None and (
        not isinstance(max_episode_steps, int) or max_episode_steps < 1
    ):
        raise RegistrationError(
            f"max_episode_steps of `{env_id}` must be a positive int or None, got {max_episode_steps!r}"
        )
    cls, kind = _import_entry_point(env_id, entry_point)
    kwargs = dict(kwargs or {})
    if kind == "single":
        gym.register(
            id=env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=max_episode_steps
        )
    elif max_episode_steps is not None:
        raise RegistrationError(
            f"max_episode_steps applies to single-agent envs; `{env_id}` is a multi-agent ({kind}) "
            "env, which ends its episodes itself."
        )
    _CATALOG[env_id] = EnvEntry(env_id, entry_point, cls, kind, kwargs, max_episode_steps)
    _UNAVAILABLE.pop(env_id, None)


def register_unavailable(env_id: str, reason: str) -> None:
    """Lists an id whose optional dependencies are not installed (a suite behind an extra).

    The id shows in ``list_envs(include_unavailable=True)`` and ``lmrl envs list``;
    making it raises :class:`UnknownEnvError` with ``reason``, one line with the fix.

    Args:
        env_id: ``namespace/Name-vN``.
        reason: What is missing and the command that installs it, for example
            ``"`twx/Coin-v0` needs ...: pip install 'lmrl[twx]'"``.
    """
    if env_id not in _CATALOG:
        _UNAVAILABLE[env_id] = reason


def unregister(env_id: str) -> None:
    """Removes an env from the catalog and from Gymnasium's registry (mainly for tests).

    Raises:
        UnknownEnvError: The id is not in the catalog.
    """
    env_id = _entry(env_id).env_id
    if _CATALOG.pop(env_id).kind == "single":
        gym.registry.pop(env_id, None)


def register_builtin_envs() -> None:
    """Registers lmrl's own envs and those of installed plugins; safe to call again.

    Plugins come from the ``lmrl.envs`` entry-point group (see the module
    docstring). A plugin that fails to load is skipped with a warning, so one
    broken package cannot break ``import lmrl``.
    """
    global _builtins_done
    if _builtins_done:
        return
    for env_id, entry_point in BUILTIN_ENVS.items():
        if env_id not in _CATALOG:
            gym.registry.pop(env_id, None)  # left over from a reloaded catalog module
            register(env_id, entry_point)
    _builtins_done = True
    _load_plugins()


def _load_plugins() -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not inspect.ismodule(obj):
                obj()
        except Exception as exc:
            warnings.warn(
                f"Skipping lmrl env plugin {ep.name!r} ({ep.value}): {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )


def _resolve(env_id: str) -> str:
    """``"module:namespace/Name-vN"`` -> imports ``module`` (which registers the env), returns the id.

    As with ``gymnasium.make("module:Env-v0")``, this lets a command line use an
    env whose module registers it on import, without an installed plugin.
    """
    if not isinstance(env_id, str) or ":" not in env_id:
        return env_id
    module_name, _, plain = env_id.partition(":")
    if plain not in _CATALOG:
        try:
            importlib.import_module(module_name)
        except Exception as exc:
            raise RegistrationError(
                f"Cannot import module `{module_name}` named in env id '{env_id}': "
                f"{type(exc).__name__}: {exc}. Put the module on PYTHONPATH (or install its package)."
            ) from exc
        if plain not in _CATALOG:
            raise UnknownEnvError(
                f"Module `{module_name}` was imported but did not register `{plain}`.{did_you_mean(plain, _CATALOG)} "
                f"Call lmrl.envs.register({plain!r}, ...) at the module's top level."
            )
    return plain


def _entry(env_id: str) -> EnvEntry:
    env_id = _resolve(env_id)
    if env_id in _UNAVAILABLE and env_id not in _CATALOG:
        raise UnknownEnvError(_UNAVAILABLE[env_id])
    if env_id not in _CATALOG:
        raise UnknownEnvError(
            f"Unknown env id `{env_id}`.{did_you_mean(env_id, _CATALOG)} "
            "Run `lmrl envs list` to see all ids."
        )
    return _CATALOG[env_id]


def env_kind(env_id: str) -> EnvKind:
    """The kind of a registered env: ``"single"``, ``"aec"`` or ``"parallel"``.

    Args:
        env_id: A catalog id (or ``"module:id"``, see :func:`make`).

    Raises:
        UnknownEnvError: The id is not in the catalog (or its suite is not installed).
    """
    return _entry(env_id).kind


def make(env_id: str, **kwargs: Any) -> Any:
    """Makes a registered env, as the object its kind calls for.

    Args:
        env_id: A catalog id, for example ``"lmrl/Maze-v0"``, or ``"module:id"``: then
            ``module`` is imported first (it registers the env), as with ``gymnasium.make``.
        **kwargs: For a single-agent env, passed to ``gymnasium.make`` (constructor kwargs,
            ``render_mode``, ...); for a multi-agent env, constructor kwargs over the registered ones.

    Returns:
        A single-agent env wrapped as ``gymnasium.make`` wraps it (``env.unwrapped`` is the
        text env); a PettingZoo ``AECEnv`` for an ``"aec"`` id; a PettingZoo ``ParallelEnv``
        for a ``"parallel"`` id (``lmrl.envs.multiagent.make_aec`` gives its AEC form).

    Raises:
        UnknownEnvError: The id is not in the catalog.
        RegistrationError: A single-agent env's spaces are not text (checked on every make),
            or the module of a ``"module:id"`` cannot be imported.

    Example:
        >>> import lmrl
        >>> make("lmrl/TicTacToe-v0").possible_agents
        ['player_0', 'player_1']
    """
    entry = _entry(env_id)
    env_id = entry.env_id
    if entry.kind != "single":
        return entry.env_class(**{**entry.kwargs, **kwargs})
    env = gym.make(env_id, **kwargs)
    try:
        check_text_spaces(env, env_id)
    except RegistrationError:
        env.close()
        raise
    return env


def list_envs(
    include_unavailable: bool = False, kinds: tuple[EnvKind, ...] = ("single",)
) -> list[str]:
    """The sorted ids in the lmrl catalog: by default the single-agent ones.

    The default keeps ``[make(e) for e in list_envs()]`` a list of Gymnasium envs;
    ``list_envs(kinds=ENV_KINDS)`` lists every kind.

    Args:
        include_unavailable: Also list the ids whose optional extra is not installed
            (:func:`env_info` describes them; :func:`make` raises with the install command).
            Their kind is not known until the extra is installed, so ``kinds`` does not
            filter them.
        kinds: The kinds to list, for example ``("aec", "parallel")`` for the multi-agent envs.
    """
    ids = {env_id for env_id, entry in _CATALOG.items() if entry.kind in kinds}
    if include_unavailable:
        ids |= set(_UNAVAILABLE)
    return sorted(ids)


def agent_instructions(env_id: str, env_kwargs: dict[str, Any] | None = None) -> str | None:
    """The env's own agent-facing instructions (``agent_instructions`` on its class), or None.

    None means the env has none of its own: chat prompts then build the system
    message from its docstring (:func:`lmrl.envs.adapter.env_instructions`).

    Args:
        env_id: A catalog id.
        env_kwargs: The user's env arguments, applied over the registered ones.

    Raises:
        UnknownEnvError: The id is not in the catalog (or its suite is not installed).
    """
    entry = _entry(env_id)
    method = getattr(entry.env_class, "agent_instructions", None)
    if not callable(method):
        return None
    return method(**{**dict(entry.kwargs), **dict(env_kwargs or {})})


def env_info(env_id: str) -> dict[str, Any]:
    """What the catalog knows about an env, without making it.

    Returns:
        ``{"id", "entry_point", "kind", "doc", "default_action_mode", "max_episode_steps",
        "kwargs", "dialogue"}``, and for a multi-agent env ``"agents"`` (its ``possible_agents``).
        ``max_episode_steps`` is the registered ``TimeLimit`` or else the class's own default
        limit (turns, for a multi-agent env). An id whose suite is not installed has kind
        ``"unavailable"``.

    Raises:
        UnknownEnvError: The id is not in the catalog.
    """
    if env_id in _UNAVAILABLE and env_id not in _CATALOG:  # listed, but its extra is missing
        return {
            "id": env_id,
            "entry_point": None,
            "kind": "unavailable",
            "doc": f"(unavailable) {_UNAVAILABLE[env_id]}",
            "default_action_mode": "unavailable",
            "max_episode_steps": None,
            "kwargs": {},
            "dialogue": False,
        }
    entry = _entry(env_id)
    cls = entry.env_class
    info = {
        "id": entry.env_id,
        "entry_point": entry.entry_point,
        "kind": entry.kind,
        "doc": inspect.getdoc(cls) or "",
        "default_action_mode": getattr(
            cls, "default_action_mode", "generate" if entry.kind == "single" else "choose"
        ),
        "max_episode_steps": entry.max_episode_steps or getattr(cls, "max_episode_steps", None),
        "kwargs": dict(entry.kwargs),
        "dialogue": bool(getattr(cls, "dialogue", False)),
    }
    if entry.kind != "single":
        info["agents"] = list(cls(**entry.kwargs).possible_agents)
    return info
