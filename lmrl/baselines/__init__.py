"""Classic baselines that show where LLM policies stand: tabular Q-learning and SARSA.

Example:
    >>> import lmrl
    >>> from lmrl.baselines import train_tabular
    >>> agent, curve = train_tabular("lmrl/Maze-v0", algo="q", episodes=500, seed=0)
"""

from lmrl.baselines.tabular import (
    LearningCurve,
    TabularAgent,
    discrete_actions,
    state_key,
    train_tabular,
)

__all__ = ["LearningCurve", "TabularAgent", "discrete_actions", "state_key", "train_tabular"]
