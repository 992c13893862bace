"""Multi-agent text envs (PettingZoo), their catalog, scripted agents and rollouts.

The envs:

| id | API | agents | what they do |
|---|---|---|---|
| ``lmrl/TicTacToe-v0`` | AEC | ``player_0`` (X), ``player_1`` (O) | tic-tac-toe, moves named in words |
| ``lmrl/Negotiation-v0`` | AEC | ``player_0``, ``player_1`` | split items they value privately (Deal or No Deal) |
| ``lmrl/Referential-v0`` | Parallel | ``speaker_0``, ``listener_0`` | the speaker describes a target, the listener picks it |

The contract an RLlib multi-agent wrapper can rely on, for every env here:

* ``env.possible_agents`` lists the agent ids (strings ``name_N``).
* ``env.observation_space(agent)`` is ``Dict(text=Text, actions=Sequence(Text))``
  and ``env.action_space(agent)`` is ``Text``: what a single-agent
  :class:`~lmrl.envs.base.TextEnv` has, the same objects for every agent. An
  observation is ``{"text": str, "actions": tuple[str, ...]}``, so
  :class:`lmrl.envs.adapter.TextCodec` encodes it per agent, unchanged.
* An action is a ``str``. Bad text is penalised and explained, never raised on;
  a non-``str`` raises :class:`~lmrl.errors.InvalidActionError`.
* ``actions`` is empty for an agent that is not to move (AEC) and is
  ``("wait",)`` (:data:`~lmrl.envs.multiagent.base.WAIT`) for a Parallel agent
  that waits while the other acts; a wrapper may skip such agents (any text
  they send is ignored).
* ``info[agent]["success"]`` (bool) is always there.
* ``env.unwrapped.expert_action(agent)`` is the scripted expert's move
  (privileged) and ``env.unwrapped.random_action(agent, rng)`` a random one;
  :class:`RandomMultiAgent` and :class:`ExpertMultiAgent` wrap them as agents
  with ``act(agent, obs, info, env)``.
* :func:`multiagent_corpus` gives the texts of expert and random play (to train
  a tokenizer, like ``lmrl.pipelines.data.env_corpus`` for single-agent envs).
* The class attribute ``default_action_mode`` (``"choose"``) and
  ``max_episode_steps`` (turns) mirror the single-agent envs.

``make_aec(id)`` gives any of them as an AEC env (Parallel ones through
PettingZoo's ``parallel_to_aec``), ``make_parallel(id)`` the Parallel ones
natively. RLlib's ``PettingZooEnv`` (AEC, turn-based) and
``ParallelPettingZooEnv`` take them as they are.

Example:
    >>> from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent, make_aec, run_multiagent_episodes
    >>> env = make_aec("lmrl/TicTacToe-v0")
    >>> env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.last()
    >>> obs["actions"][:2]
    ('top left', 'top middle')
    >>> report = run_multiagent_episodes(
    ...     "lmrl/TicTacToe-v0", {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(0)}, n=20)
    >>> report.success_rate("player_0")
    1.0
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from lmrl.envs.multiagent.rollout import (
    ExpertMultiAgent,
    MultiAgentReport,
    RandomMultiAgent,
    multiagent_corpus,
    run_multiagent_episodes,
)
from lmrl.errors import RegistrationError, UnknownEnvError, did_you_mean

#: Multi-agent env ids and their entry points (``"module:Class"``).
MULTIAGENT_ENVS: dict[str, str] = {
    "lmrl/TicTacToe-v0": "lmrl.envs.multiagent.tictactoe:TicTacToeEnv",
    "lmrl/Negotiation-v0": "lmrl.envs.multiagent.negotiation:NegotiationEnv",
    "lmrl/Referential-v0": "lmrl.envs.multiagent.referential:ReferentialEnv",
}


def is_multiagent(env_id: str) -> bool:
    """Whether ``env_id`` names a multi-agent (PettingZoo) env."""
    return env_id in list_multiagent_envs()


def list_multiagent_envs() -> list[str]:
    """The sorted multi-agent env ids."""
    return sorted(MULTIAGENT_ENVS)


def _class(env_id: str) -> type:
    if env_id not in MULTIAGENT_ENVS:
        from lmrl.envs import catalog

        if env_id in catalog.list_envs():
            raise UnknownEnvError(
                f"`{env_id}` is a single-agent env; make it with lmrl.envs.make. "
                f"Multi-agent ids: {', '.join(list_multiagent_envs())}."
            )
        raise UnknownEnvError(
            f"Unknown multi-agent env id `{env_id}`.{did_you_mean(env_id, MULTIAGENT_ENVS)} "
            f"Multi-agent ids: {', '.join(list_multiagent_envs())}."
        )
    module, attr = MULTIAGENT_ENVS[env_id].split(":")
    return getattr(importlib.import_module(module), attr)


def register_multiagent(env_id: str, entry_point: str) -> None:
    """Adds a multi-agent env (a PettingZoo ``AECEnv`` or ``ParallelEnv`` subclass).

    Raises:
        RegistrationError: Malformed or duplicate id, or an entry point that is not such a class.
    """
    from pettingzoo import AECEnv, ParallelEnv

    from lmrl.envs import catalog

    if not isinstance(env_id, str) or not catalog._ID_RE.match(env_id):
        raise RegistrationError(
            f"Malformed env id {env_id!r}: ids must have the form `namespace/Name-vN`, "
            "for example `lmrl/TicTacToe-v0`."
        )
    if env_id in MULTIAGENT_ENVS:
        raise RegistrationError(
            f"Multi-agent env id `{env_id}` is already registered (entry point "
            f"'{MULTIAGENT_ENVS[env_id]}'); choose another id or bump its version, for example `-v1`."
        )
    catalog._import_entry_point(env_id, entry_point, base=(AECEnv, ParallelEnv))  # raises if unfit
    MULTIAGENT_ENVS[env_id] = entry_point


def is_parallel(env_id: str) -> bool:
    """Whether the env is a PettingZoo ``ParallelEnv`` (else AEC)."""
    from pettingzoo import ParallelEnv

    return issubclass(_class(env_id), ParallelEnv)


def multiagent_env_info(env_id: str) -> dict[str, Any]:
    """What is known of a multi-agent env without making it.

    Returns:
        ``{"id", "entry_point", "api" ("aec" or "parallel"), "agents", "doc",
        "default_action_mode", "max_episode_steps"}``.
    """
    cls = _class(env_id)
    return {
        "id": env_id,
        "entry_point": MULTIAGENT_ENVS[env_id],
        "api": "parallel" if is_parallel(env_id) else "aec",
        "agents": list(cls().possible_agents),
        "doc": inspect.getdoc(cls) or "",
        "default_action_mode": getattr(cls, "default_action_mode", "choose"),
        "max_episode_steps": getattr(cls, "max_episode_steps", None),
    }


def make_aec(env_id: str, **kwargs: Any):
    """Makes a multi-agent env as a PettingZoo AEC env (Parallel envs through ``parallel_to_aec``).

    Args:
        env_id: A multi-agent id, e.g. ``"lmrl/TicTacToe-v0"``.
        **kwargs: Constructor arguments (see the env's docstring).

    Raises:
        UnknownEnvError: The id is not a multi-agent env.
    """
    env = _class(env_id)(**kwargs)
    if is_parallel(env_id):
        from pettingzoo.utils.conversions import parallel_to_aec

        return parallel_to_aec(env)
    return env


def make_parallel(env_id: str, **kwargs: Any):
    """Makes a Parallel multi-agent env (``lmrl/Referential-v0``).

    Raises:
        UnknownEnvError: The id is not a multi-agent env, or it is turn-based (use :func:`make_aec`).
    """
    if not is_parallel(env_id):
        raise UnknownEnvError(
            f"`{env_id}` is a turn-based (AEC) env and has no Parallel form; use make_aec({env_id!r})."
        )
    return _class(env_id)(**kwargs)


__all__ = [
    "MULTIAGENT_ENVS",
    "ExpertMultiAgent",
    "MultiAgentReport",
    "RandomMultiAgent",
    "is_multiagent",
    "is_parallel",
    "list_multiagent_envs",
    "make_aec",
    "make_parallel",
    "multiagent_corpus",
    "multiagent_env_info",
    "register_multiagent",
    "run_multiagent_episodes",
]
