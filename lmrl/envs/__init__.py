"""Text environments: the ``TextEnv`` base, the catalog, built-in envs, scripted agents.

Importing :mod:`lmrl` registers the built-in envs (``lmrl/Maze-v0``,
``lmrl/GuessNumber-v0``, ``lmrl/CustomerSupport-v0``, ``lmrl/Wordle-v0``,
``lmrl/TwentyQuestions-v0``, ``lmrl/Arithmetic-v0``,
``lmrl/SentimentSteer-v0``) and any plugin envs. Env classes are imported by
the catalog; the health checks live in :mod:`lmrl.envs.checks`. The
multi-agent (PettingZoo) envs have their own catalog in
:mod:`lmrl.envs.multiagent`, which is imported only when used.

Example:
    >>> import lmrl
    >>> from lmrl.envs import ExpertAgent, make, run_episodes
    >>> env = make("lmrl/Maze-v0")
    >>> obs, info = env.reset(seed=0)
    >>> run_episodes("lmrl/GuessNumber-v0", ExpertAgent(), n=5).success_rate
    1.0
"""

from lmrl.envs.agents import Agent, ExpertAgent, RandomAgent
from lmrl.envs.base import TextEnv
from lmrl.envs.catalog import env_info, list_envs, make, register, register_builtin_envs, unregister
from lmrl.envs.rollout import RolloutReport, run_episodes

__all__ = [
    "Agent",
    "ExpertAgent",
    "RandomAgent",
    "RolloutReport",
    "TextEnv",
    "env_info",
    "list_envs",
    "make",
    "register",
    "register_builtin_envs",
    "run_episodes",
    "unregister",
]
