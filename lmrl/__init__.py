"""lmrl: reinforcement learning with language models on Ray.

Importing :mod:`lmrl` registers the text environment catalog with Gymnasium,
so ``gymnasium.make("lmrl/Maze-v0")`` works.
"""

__version__ = "0.1.0"

from lmrl.envs import catalog as _catalog  # noqa: E402

_catalog.register_builtin_envs()
