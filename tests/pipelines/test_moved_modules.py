"""RLlib checkpoints written before ``lmrl/pipelines`` was split in ``rl/`` and ``lm_train/`` load.

RLlib records the classes an algorithm is built from (learner, env, callbacks, policy mapping)
by module path, in each ``class_and_ctor_args.pkl``, and ``Algorithm.from_checkpoint`` imports
them from there; ``lmrl.pipelines.MOVED_MODULES`` keeps the old paths importable.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_run_config

from lmrl.pipelines import MOVED_MODULES

#: What checkpoints written before the move name (read from real ones: single-agent PPO, GRPO and
#: multi-agent self-play with snapshots), besides lmrl.policies.module, which did not move.
OLD_NAMES = [
    ("lmrl.pipelines.learner", "LMPPOLearner"),
    ("lmrl.pipelines.rllib_builder", "RLlibTextEnv"),
    ("lmrl.pipelines.rllib_builder", "SuccessCallback"),
    ("lmrl.pipelines.multiagent", "RLlibTextMultiAgentEnv"),
    ("lmrl.pipelines.multiagent", "PolicyMapping"),
    ("lmrl.pipelines.multiagent", "SnapshotCallback"),
]


@pytest.mark.parametrize(("module", "name"), OLD_NAMES)
def test_a_class_pickled_under_its_old_module_path_loads_as_the_moved_class(module, name):
    new = importlib.import_module(MOVED_MODULES[module])
    assert pickle.loads(f"c{module}\n{name}\n.".encode()) is getattr(new, name)
    assert importlib.import_module(module) is new
    assert new.__name__ == MOVED_MODULES[module]  # the module keeps its own name


def test_an_unknown_pipelines_module_still_fails_to_import():
    with pytest.raises(ModuleNotFoundError, match="lmrl.pipelines.no_such_module"):
        importlib.import_module("lmrl.pipelines.no_such_module")


def _with_old_module_paths(path: Path) -> None:
    """Rewrites a ``class_and_ctor_args.pkl`` as it was written before the move."""
    from ray import cloudpickle

    old_of = {new: old for old, new in MOVED_MODULES.items()}
    for old in MOVED_MODULES:  # cloudpickle names a class by reference only from sys.modules
        importlib.import_module(old)
    data = cloudpickle.loads(path.read_bytes())
    classes = [
        c
        for module in old_of
        for c in vars(sys.modules[module]).values()
        if isinstance(c, type) and c.__module__ == module
    ]
    try:
        for c in classes:
            c.__module__ = old_of[c.__module__]
        path.write_bytes(cloudpickle.dumps(data))
    finally:
        for c in classes:
            c.__module__ = MOVED_MODULES[c.__module__]


def test_an_rllib_checkpoint_naming_the_old_modules_loads_with_from_checkpoint(
    ray_session, tiny_model_dir, tmp_path
):
    from ray.rllib.algorithms.algorithm import Algorithm

    from lmrl.pipelines.rl.builder import build_algorithm_config
    from lmrl.pipelines.rl.learner import LMPPOLearner

    cfg = tiny_run_config(tiny_model_dir, str(tmp_path))
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        algo.save_to_path(str(tmp_path / "ckpt"))
        saved = algo.learner_group.get_weights()["default_policy"]
    finally:
        algo.stop()
    for path in (tmp_path / "ckpt").rglob("class_and_ctor_args.pkl"):
        _with_old_module_paths(path)
    top = (tmp_path / "ckpt" / "class_and_ctor_args.pkl").read_bytes()
    assert b"lmrl.pipelines.learner" in top and b"lmrl.pipelines.rllib_builder" in top
    assert b"lmrl.pipelines.rl." not in top

    algo = Algorithm.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        assert type(algo.learner_group._learner) is LMPPOLearner
        restored = algo.learner_group.get_weights()["default_policy"]
    finally:
        algo.stop()
    assert saved.keys() == restored.keys()
    for key in saved:
        np.testing.assert_array_equal(saved[key], restored[key])
