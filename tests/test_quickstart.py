"""The main job, exactly as the README's first command runs it (minus the install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quickstart_learns_the_maze(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", "quickstart", "--out", str(tmp_path / "qs")],
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "qs" / "results.json").read_text())
    assert results["eval_episodes"] == 100
    assert results["success_rate"] >= 0.9, results
    assert results["random_success_rate"] <= 0.3, results
    assert results["expert_success_rate"] == 1.0
    warm = results["warm_start"]  # expert demos -> SFT on Ray Train -> PPO
    assert warm["greedy_success_rate_before_ppo"] > results["random_success_rate"], warm
    from lmrl.pipelines.quickstart import WARM_START

    assert results["train"]["iterations"] <= WARM_START["ppo_iterations"]
    assert f"lr: {WARM_START['ppo_lr']}" in (Path(results["run_dir"]) / "config.yaml").read_text()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(results["export_dir"])


def test_ppo_after_sft_takes_smaller_steps_unless_told():
    from lmrl.pipelines.quickstart import WARM_START, ppo_after_sft, quickstart_config

    cfg = ppo_after_sft(quickstart_config("/tmp/qs-unused"), "/models/sft")
    assert cfg.policy.model == "/models/sft"
    assert cfg.algorithm.lr == WARM_START["ppo_lr"] < quickstart_config("/tmp/qs-unused").algorithm.lr
    assert cfg.run.stop.iterations == WARM_START["ppo_iterations"]
    mine = ppo_after_sft(quickstart_config("/tmp/qs-unused", {"algorithm": {"lr": 1e-3}, "run": {"stop": {"iterations": 5}}}), "/m")
    assert mine.algorithm.lr == 1e-3 and mine.run.stop.iterations == 5
