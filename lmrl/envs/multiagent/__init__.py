"""Multi-agent text envs (PettingZoo), their scripted agents, and their AEC/Parallel views.

They are registered in the one catalog (:mod:`lmrl.envs.catalog`), which records
each id's kind (``"aec"`` or ``"parallel"``); ``lmrl.envs.make(id)`` makes them,
``lmrl.envs.checks.check_env_id`` checks them and ``lmrl.envs.run_episodes``
plays them, as for single-agent envs. The envs:

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
  a tokenizer, like ``lmrl.pipelines.corpus.env_corpus`` for single-agent envs).
* The class attribute ``default_action_mode`` (``"choose"``) and
  ``max_episode_steps`` (turns) mirror the single-agent envs.

``make_aec(id)`` gives any of them as an AEC env (Parallel ones through
PettingZoo's ``parallel_to_aec``), ``make_parallel(id)`` the Parallel ones
natively (what ``lmrl.envs.make`` returns for them). RLlib's ``PettingZooEnv``
(AEC, turn-based) and ``ParallelPettingZooEnv`` take them as they are.

Example:
    >>> from lmrl.envs import run_episodes
    >>> from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent, make_aec
    >>> env = make_aec("lmrl/TicTacToe-v0")
    >>> env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.last()
    >>> obs["actions"][:2]
    ('top left', 'top middle')
    >>> report = run_episodes(
    ...     "lmrl/TicTacToe-v0", {"player_0": ExpertMultiAgent(), "player_1": RandomMultiAgent(0)}, n=20)
    >>> report.success_rate("player_0")
    1.0
"""

from __future__ import annotations

from typing import Any

from lmrl.envs import catalog
from lmrl.envs.multiagent.agents import ExpertMultiAgent, RandomMultiAgent, multiagent_corpus
from lmrl.errors import UnknownEnvError

_MULTIAGENT_KINDS: tuple[catalog.EnvKind, ...] = ("aec", "parallel")


def multiagent_env_info(env_id: str) -> dict[str, Any]:
    """:func:`lmrl.envs.env_info` of a multi-agent env, which includes ``"agents"``.

    Raises:
        UnknownEnvError: The id is unknown or names a single-agent env.
    """
    _multiagent_kind(env_id)
    return catalog.env_info(env_id)


def _multiagent_kind(env_id: str) -> catalog.EnvKind:
    kind = catalog.env_kind(env_id)
    if kind not in _MULTIAGENT_KINDS:
        raise UnknownEnvError(
            f"`{env_id}` is a single-agent env; make it with lmrl.envs.make. "
            f"Multi-agent ids: {', '.join(catalog.list_envs(kinds=_MULTIAGENT_KINDS))}."
        )
    return kind


def make_aec(env_id: str, **kwargs: Any) -> Any:
    """Makes a multi-agent env as a PettingZoo AEC env (Parallel envs through ``parallel_to_aec``).

    Args:
        env_id: A multi-agent id, e.g. ``"lmrl/TicTacToe-v0"``.
        **kwargs: Constructor arguments (see the env's docstring).

    Returns:
        A PettingZoo ``AECEnv``.

    Raises:
        UnknownEnvError: The id is unknown or names a single-agent env.
    """
    kind = _multiagent_kind(env_id)
    env = catalog.make(env_id, **kwargs)
    if kind == "parallel":
        from pettingzoo.utils.conversions import parallel_to_aec

        return parallel_to_aec(env)
    return env


def make_parallel(env_id: str, **kwargs: Any) -> Any:
    """Makes a Parallel multi-agent env (``lmrl/Referential-v0``), as ``lmrl.envs.make`` does.

    Returns:
        A PettingZoo ``ParallelEnv``.

    Raises:
        UnknownEnvError: The id is not a multi-agent env, or it is turn-based (use :func:`make_aec`).
    """
    if _multiagent_kind(env_id) != "parallel":
        raise UnknownEnvError(
            f"`{env_id}` is a turn-based (AEC) env and has no Parallel form; use make_aec({env_id!r})."
        )
    return catalog.make(env_id, **kwargs)


__all__ = [
    "ExpertMultiAgent",
    "RandomMultiAgent",
    "make_aec",
    "make_parallel",
    "multiagent_corpus",
    "multiagent_env_info",
]
