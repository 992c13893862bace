"""The `warm_start` section of a run config: what `lmrl train` runs before PPO (no Ray here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.lm_train.config import FinetuneConfig
from lmrl.pipelines.quickstart import WARM_START, ppo_after_sft, warm_start_settings
from lmrl.platform.config import load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "switches_warm.yaml"


def test_off_by_default_and_quickstart_defaults_unchanged():
    cfg = RunConfig()
    assert cfg.warm_start.enabled is False
    assert warm_start_settings(cfg) == WARM_START


def test_example_finetune_section_is_a_valid_finetune_config():
    cfg = load_config(str(EXAMPLE))
    assert cfg.warm_start.enabled and cfg.env.id == "lmrl/Switches-v0"
    s = warm_start_settings(cfg)
    ft = FinetuneConfig.model_validate({**s["finetune"], "data": {**s["finetune"]["data"], "train": ["x.parquet"]}})
    # the section's model replaces the quickstart's preset (preset and config are exclusive)
    assert ft.model.preset is None and ft.model.config["n_embd"] == 256
    assert ft.model.config["resid_pdrop"] == ft.model.config["attn_pdrop"] == 0.0
    assert (ft.training.steps, ft.training.lr, ft.resources.num_workers) == (500, 1e-3, 1)
    assert ft.data.max_length == 96  # kept from the quickstart's defaults
    assert (s["demo_episodes"], s["ppo_iterations"], s["ppo_lr"]) == (200, 5, 1e-4)


def test_ppo_after_sft_caps_iterations_sets_lr_and_disables_the_warm_start():
    cfg = load_config(str(EXAMPLE), ["run.stop.iterations=40"])
    ppo = ppo_after_sft(cfg, "/sft/model")
    assert ppo.policy.model == "/sft/model"
    assert ppo.run.stop.iterations == 5 and ppo.algorithm.lr == 1e-4 and ppo.algorithm.kl_ref_coeff == 0.1
    assert ppo.warm_start.enabled is False  # a resumed PPO run does not clone again
    own_lr = ppo_after_sft(load_config(str(EXAMPLE), ["algorithm.lr=5e-4"]), "/sft/model")
    assert own_lr.algorithm.lr == 5e-4
    uncapped = ppo_after_sft(load_config(str(EXAMPLE), ["warm_start.ppo_iterations=null"]), "/m")
    assert uncapped.run.stop.iterations == 5  # run.stop.iterations of the example


def test_unknown_warm_start_key_is_refused():
    with pytest.raises(ValueError, match="demo_episode"):
        RunConfig.model_validate({"warm_start": {"demo_episode": 10}})
