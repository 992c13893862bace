"""One LoRA PPO iteration with the real SmolLM2-135M-Instruct, pulled from the package index.

Slow (minutes on 2 cores) but run in CI: it is the test that lmrl's policies
are real language models, not only the tiny presets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.rl.loop import train


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_one_lora_ppo_iteration_with_the_real_model(smollm2_dir, ray_session, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = RunConfig.model_validate(
        {
            "env": {"id": "lmrl/Maze-v0", "kwargs": {"max_steps": 4}},  # episodes end within the batch
            "policy": {"model": "smollm2-135m-instruct", "action_mode": "choose"},
            "algorithm": {"train_batch_size": 16, "minibatch_size": 8, "num_epochs": 1, "kl_ref_coeff": 0.05},
            "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 4},
            "run": {"output_dir": str(tmp_path), "name": "real", "stop": {"iterations": 1},
                    "progress": False, "eval_episodes": 1, "checkpoint_every": 1},
        }
    )  # fmt: skip
    run = train(cfg)
    summary = json.loads((run / "summary.json").read_text())
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # LoRA on every linear layer (r=8) plus the value head: 9.8 MB, not the 538 MB model.
    assert 5e6 < summary["weights_synced_bytes"] < 538e6 / 50
    checkpoint = Path(json.loads((run / "state.json").read_text())["checkpoint"])
    ckpt_bytes = sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file())
    assert ckpt_bytes < 100e6, f"checkpoint is {ckpt_bytes / 1e6:.0f} MB"
    # The pretrained LM's initial policy explores, and the value head is not pinned at its clip.
    assert row["entropy"] > 0.05
    assert row["vf_loss"] < 0.9 * cfg.algorithm.vf_clip_param
    assert row["kl_ref"] is not None and 0.0 <= row["kl_ref"] < 1.0  # at the pretrained default lr 1e-4
    assert row["episodes"] >= 4
    # The export is a merged, plain HF model that differs from the base after the update.
    meta = json.loads((run / "export" / "lmrl.json").read_text())
    assert meta["lora"]["r"] == 8 and meta["adapter"]["chat_system"].startswith("Find the goal")
    exported = AutoModelForCausalLM.from_pretrained(run / "export")
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert type(exported).__name__ == "LlamaForCausalLM"
    assert not exported.state_dict()[name].equal(base.state_dict()[name])
    assert summary["eval"]["greedy_success_rate"] is not None
