"""Text environments: the ``TextEnv`` base, the catalog, built-in envs, scripted agents.

Importing :mod:`lmrl` registers the built-in envs, single-agent (``lmrl/Maze-v0``,
``lmrl/GuessNumber-v0``, ``lmrl/CustomerSupport-v0``, ``lmrl/Wordle-v0``,
``lmrl/TwentyQuestions-v0``, ``lmrl/Arithmetic-v0``, ``lmrl/SentimentSteer-v0``,
``lmrl/Switches-v0``) and multi-agent (``lmrl/TicTacToe-v0``,
``lmrl/Negotiation-v0``, ``lmrl/Referential-v0``, in :mod:`lmrl.envs.multiagent`),
and any plugin envs, in one catalog that records each id's kind (see
:func:`env_kind`). :func:`make` and :func:`run_episodes` take every kind; the
health checks live in :mod:`lmrl.envs.checks`.

Example:
    >>> import lmrl
    >>> from lmrl.envs import ExpertAgent, make, run_episodes
    >>> env = make("lmrl/Maze-v0")
    >>> obs, info = env.reset(seed=0)
    >>> run_episodes("lmrl/GuessNumber-v0", ExpertAgent(), n=5).success_rate
    1.0
    >>> make("lmrl/TicTacToe-v0").possible_agents
    ['player_0', 'player_1']
"""

from lmrl.envs.agents import Agent, ExpertAgent, RandomAgent
from lmrl.envs.base import TextEnv
from lmrl.envs.catalog import (
    ENV_KINDS,
    EnvKind,
    agent_instructions,
    env_info,
    env_kind,
    list_envs,
    make,
    register,
    register_builtin_envs,
    unregister,
)
from lmrl.envs.rollout import MultiAgentReport, RolloutReport, run_episodes

__all__ = [
    "ENV_KINDS",
    "Agent",
    "EnvKind",
    "ExpertAgent",
    "MultiAgentReport",
    "RandomAgent",
    "RolloutReport",
    "TextEnv",
    "agent_instructions",
    "env_info",
    "env_kind",
    "list_envs",
    "make",
    "register",
    "register_builtin_envs",
    "run_episodes",
    "unregister",
]
