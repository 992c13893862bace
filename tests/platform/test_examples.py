"""Every shipped example config loads and validates, and the quickstart one matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest

import lmrl.envs
from lmrl.pipelines.quickstart import QUICKSTART_CONFIG
from lmrl.platform.config import load_config

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path):
    cfg = load_config(str(path))
    assert cfg.env.id in lmrl.envs.list_envs(kinds=lmrl.envs.ENV_KINDS)


def test_maze_example_is_the_quickstart_config():
    cfg = load_config(str(Path(EXAMPLES[0]).parent / "maze_choose.yaml"))
    for section, values in QUICKSTART_CONFIG.items():
        for key, value in values.items():
            if key == "stop":
                assert cfg.run.stop.model_dump() == {**cfg.run.stop.model_dump(), **value}
            elif section == "run" and key == "eval_episodes":
                continue  # the quickstart evaluates 100 episodes itself
            else:
                assert getattr(getattr(cfg, section), key) == value, (section, key)
