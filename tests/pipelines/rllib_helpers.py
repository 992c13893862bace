"""Helpers for tests that look inside an RLlib algorithm built by ``build_algorithm_config``."""

from __future__ import annotations

import copy
from typing import Any


def learner_batch(algo: Any, episodes: list) -> dict[str, Any]:
    """The learner batch the algorithm's learner connectors make of (a copy of) ``episodes``
    (``default_policy``'s), without training on it."""
    learner = algo.learner_group._learner
    return learner._learner_connector(
        rl_module=learner.module, batch={}, episodes=copy.deepcopy(episodes), shared_data={}
    )["default_policy"]


def sample_learner_batch(algo: Any, num_timesteps: int) -> tuple[list, dict[str, Any]]:
    """Episodes sampled by the algorithm's local env runner, and the learner batch its connectors
    make of them (``default_policy``'s), without training on them."""
    episodes = algo.env_runner.sample(num_timesteps=num_timesteps, random_actions=False)
    return episodes, learner_batch(algo, episodes)
