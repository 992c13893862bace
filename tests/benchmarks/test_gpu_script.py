"""``benchmarks/gpu.sh`` / ``gpu.py`` on a machine without a GPU: its message, its arguments, its JSON.

The GPU sizes need a CUDA device; here the script must say plainly that there
is none, and ``--cpu-smoke`` runs the same code at tiny sizes on the CPU so
that the measuring and JSON-writing paths are exercised. The figures it writes
are checked for consistency, never for speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu  # noqa: E402

ENV = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


@pytest.mark.skipif(_torch_sees_cuda(), reason="this machine has a CUDA GPU")
def test_without_a_gpu_it_says_so_and_exits_3(tmp_path: Path) -> None:
    proc = _gpu_sh("--out", str(tmp_path), timeout=120)
    assert proc.returncode == gpu.EXIT_NO_GPU == 3
    assert proc.stderr.startswith("error: no CUDA GPU found (torch ")
    assert "--cpu-smoke" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # no JSON without measurements


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "nope"], "argument --only: invalid choice: 'nope'"),
        (["--budget-s", "soon"], "argument --budget-s: invalid float value: 'soon'"),
        (["--cpu-smoke", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _gpu_sh(*args, "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_missing_peft_is_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    assert gpu.main(["--cpu-smoke"]) == gpu.EXIT_MISSING
    err = capsys.readouterr().err
    assert err.startswith("error: peft not installed for ") and "-m pip install peft" in err


def test_cpu_smoke_measures_every_part_and_writes_consistent_json(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    proc = _gpu_sh("--cpu-smoke", "--out", str(tmp_path), "--work", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu.json").read_text())
    assert data["benchmark"] == "gpu" and data["quick"] is True and data["cpu_smoke"] is True
    assert data["device"] == "cpu" and data["sizes"] == gpu.SMOKE_SIZES
    assert data["model"]["source"] == "tiny Llama, randomly initialised" and data["model"]["params"] > 0
    pre, gen, ppo = (data["lmrl"][k] for k in ("pretrain", "generation", "ppo"))
    assert pre["tokens_per_s"] > 0 and pre["bf16_matmul_peak_tflops"] > 0
    assert pre["mfu"] == pytest.approx(pre["model_flops_per_s"] / pre["bf16_matmul_peak_flops"], abs=1e-4)
    assert gen["batch"] == gpu.SMOKE_SIZES["gen_batch"] and gen["new_tokens"] == gpu.SMOKE_SIZES["gen_new_tokens"]
    assert data["ratio"] == gen["ratio"] == pytest.approx(
        gen["lmrl_tokens_per_s"] / gen["hf_tokens_per_s"], rel=0.02
    )
    assert "not RLlib" in ppo["learner"] and "stand-in" in ppo["reward"]
    assert ppo["lora"]["target_modules"] == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    assert ppo["lora"]["trainable_params"] > 0
    med = ppo["median"]
    assert med["iteration_s"] == pytest.approx(med["rollout_s"] + med["reference_s"] + med["update_s"], abs=2e-3)
    assert med["first_minibatch_clipped_share"] == 0.0  # token-in/token-out: ratio 1 before any update
    assert set(data["part_seconds"]) == set(gpu.PARTS)


def test_only_and_budget_choose_the_parts(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    assert gpu.main(["--cpu-smoke", "--only", "generation", "--out", str(tmp_path / "a")]) == 0
    data = json.loads((tmp_path / "a" / "gpu.json").read_text())
    assert data["lmrl"]["pretrain"] == {} and data["lmrl"]["ppo"] == {}
    assert data["lmrl"]["generation"]["lmrl_tokens_per_s"] > 0
    assert gpu.main(["--cpu-smoke", "--budget-s", "0", "--out", str(tmp_path / "b")]) == 0
    data = json.loads((tmp_path / "b" / "gpu.json").read_text())
    for part in ("pretrain", "generation", "ppo"):
        assert "budget" in data["lmrl"][part]["skipped"]
    assert data["ratio"] is None


def test_the_default_model_has_smollm2_135m_shape_and_palms_flops() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):  # shapes only, no memory
        lm = LlamaForCausalLM(LlamaConfig(**gpu.SMOLLM2_135M))
    n = sum(p.numel() for p in lm.parameters())
    assert n == 134_515_008  # SmolLM2-135M-Instruct's weights, the embedding tied to the head
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    assert gpu.flops_per_token(lm.config, n, 2048) == 6 * n + 12 * 30 * 2048 * 576
