"""The driver dies after a checkpoint; ``lmrl pretrain --resume`` continues with no step repeated past it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lmrl.pipelines.corpus import env_corpus
from lmrl.pipelines.run_dir import read_rows

pytestmark = pytest.mark.slow

STEPS = 300


def _lmrl(*args, cwd, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _latest_checkpoint(run) -> int | None:
    snapshot = run / "train" / "checkpoint_manager_snapshot.json"
    if not snapshot.exists():
        return None
    try:
        latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result")
    except json.JSONDecodeError:  # being written
        return None
    return int(re.sub(r"\D", "", latest["checkpoint_dir_name"])) if latest else None


def test_driver_crash_then_resume(tmp_path):
    texts = env_corpus(["lmrl/Maze-v0", "lmrl/GuessNumber-v0"], episodes=20, seed=1)
    (tmp_path / "corpus.txt").write_text("\n".join(" ".join(t.split()) for t in texts) + "\n")
    (tmp_path / "pretrain.yaml").write_text(
        "data: {train: corpus.txt, max_length: 64, eval_fraction: 0.1}\n"
        f"training: {{steps: {STEPS}, batch_size: 4, checkpoint_every: 20, eval_every: 100, warmup_steps: 10}}\n"
        "resources: {num_workers: 2, num_cpus: 2}\n"
        "run: {name: crash, progress: false}\n"
    )
    run = tmp_path / "runs" / "crash"
    # a new session: killing its process group takes the driver and the local Ray it started
    driver = _lmrl("pretrain", "pretrain.yaml", cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 600
    while _latest_checkpoint(run) is None:
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    time.sleep(2)
    checkpoint = _latest_checkpoint(run)
    first = [r["step"] for r in read_rows(run / "metrics.jsonl") if "loss" in r]
    assert checkpoint is not None and checkpoint % 20 == 0
    assert first[-1] >= checkpoint and first[-1] < STEPS, (first[-1], checkpoint)
    assert not (run / "model").exists()

    resumed = _lmrl("pretrain", "--resume", str(run), cwd=tmp_path)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    rows = read_rows(run / "metrics.jsonl")
    second = [r for r in rows if r["attempt"] == 2 and "loss" in r]
    steps = [r["step"] for r in second]
    # it continues from the checkpoint: no step up to it runs again, each later step runs once
    assert steps == list(range(checkpoint + 1, STEPS + 1)), (checkpoint, steps[:5])
    assert {r["resumed_from"] for r in second} == {checkpoint}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS
    assert f"model: {run / 'model'}" in out
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "model")
