"""The training commands end to end, each in a real subprocess with its own local Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = [
    "--set", "algorithm.train_batch_size=64",
    "--set", "algorithm.minibatch_size=32",
    "--set", "algorithm.num_epochs=1",
    "--set", "resources.num_env_runners=0",
    "--set", "resources.num_envs_per_env_runner=4",
    "--set", "resources.num_cpus=2",
    "--set", "run.progress=false",
]  # fmt: skip


def lmrl(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_train_resume_eval_rollout(tmp_path):
    config = tmp_path / "maze.yaml"
    config.write_text("env:\n  id: lmrl/Maze-v0\nrun:\n  name: cli-run\n  output_dir: runs\n  stop:\n    iterations: 1\n")
    proc = lmrl("train", str(config), *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "cli-run"
    assert str(Path("runs") / "cli-run") in proc.stdout
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1

    proc = lmrl("train", "--resume", str(run), "--set", "run.stop.iterations=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]

    proc = lmrl("eval", str(run), "-n", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for label in ("policy (greedy)", "policy (sampled)", "random", "expert"):
        assert label in proc.stdout
    report = json.loads((run / "eval" / "eval.json").read_text())
    assert report["episodes"] == 4 and report["expert_success_rate"] == 1.0
    assert (run / "eval" / "transcripts.jsonl").read_text().count("\n") == 4

    proc = lmrl("envs", "rollout", "lmrl/Maze-v0", "--policy", str(run / "export"), "-n", "3", "--show", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "You are in a maze" in proc.stdout


def test_quickstart_with_overrides_writes_results(tmp_path):
    # The warm start (demos, SFT on Ray Train) runs in tests/test_quickstart.py; here PPO only.
    proc = lmrl("quickstart", "--out", "qs", "--no-warm-start", "--set", "run.stop.iterations=1", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "qs" / "results.json").read_text())
    for key in ("success_rate", "random_success_rate", "expert_success_rate", "wall_seconds", "export_dir"):
        assert key in results
    assert results["expert_success_rate"] == 1.0
    assert Path(tmp_path / results["export_dir"], "lmrl.json").is_file()
    assert "next steps" in proc.stdout and "LM policy (greedy)" in proc.stdout


def test_quickstart_rejects_a_bad_override(tmp_path):
    proc = lmrl("quickstart", "--set", "algorithm.minibatch_size=4096", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: algorithm.minibatch_size (4096) must be <= algorithm.train_batch_size (512)")
    assert len(proc.stderr.strip().splitlines()) == 1
