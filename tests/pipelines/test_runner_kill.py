"""Reliability: an RLlib env runner killed during ``lmrl train`` does not end the run.

``lmrl train`` runs here through the real CLI entry point, in a thread of this process and on
the session's Ray, while the test kills the env runner actor's process with ``SIGKILL`` once
the first iteration is written. The run must still finish with the iterations it was asked
for, sampling with a restarted runner.

The runner's process is found among this process's descendants (the local Ray's raylet and
its workers are started from here) by the title Ray gives an actor's worker,
``ray::SingleAgentEnvRunner``: Ray's state API (``ray.util.state.list_actors``) needs the
dashboard, which the session's Ray runs without.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from lmrl.platform.cli import main

pytestmark = pytest.mark.slow

ITERATIONS = 4
RUNNER_TITLE = "ray::SingleAgentEnvRunner"


def _env_runner_pids() -> set[int]:
    """PIDs of the env runner actors of the Ray started by this process."""
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if cmdline and cmdline[0].startswith(RUNNER_TITLE):
            pids.add(proc.pid)
    return pids


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(
    what: str, check: Callable[[], Any], thread: threading.Thread, timeout: float = 120.0
) -> Any:
    """Polls ``check()`` until it returns something truthy; fails if the run ends or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if not thread.is_alive():
            pytest.fail(f"lmrl train ended before {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def test_train_finishes_after_its_env_runner_is_killed(
    ray_session: Any, tiny_model_dir: str, tmp_path: Path
) -> None:
    config = tmp_path / "maze.yaml"
    config.write_text(
        "env:\n  id: lmrl/Maze-v0\n"
        f"policy:\n  model: {tiny_model_dir}\n  action_mode: choose\n"
        "algorithm:\n  train_batch_size: 64\n  minibatch_size: 32\n  num_epochs: 1\n"
        "resources:\n  num_env_runners: 1\n  num_envs_per_env_runner: 4\n"
        f"run:\n  output_dir: {tmp_path / 'runs'}\n  name: killed\n  progress: false\n"
        f"  eval_episodes: 0\n  stop:\n    iterations: {ITERATIONS}\n"
    )
    run = tmp_path / "runs" / "killed"
    before = _env_runner_pids()  # runners of other tests' algorithms still alive, if any
    status: dict[str, object] = {}

    def train() -> None:
        try:
            status["code"] = main(["train", str(config)])
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            status["error"] = exc

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    runner = _wait_for("its env runner started", lambda: _env_runner_pids() - before, thread)
    assert len(runner) == 1, runner
    pid = runner.pop()
    _wait_for("the first iteration", lambda: _rows(run / "metrics.jsonl"), thread)
    os.kill(pid, signal.SIGKILL)
    _wait_for(
        "the killed runner to be gone", lambda: not psutil.pid_exists(pid), thread, timeout=30
    )
    thread.join(timeout=300)

    assert not thread.is_alive(), "lmrl train did not finish within 300 s of the kill"
    assert status == {"code": 0}, status
    rows = _rows(run / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == list(range(1, ITERATIONS + 1))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == ITERATIONS
    # The iterations after the kill sampled too: with a new runner, not the killed one.
    steps = [r["timesteps"] for r in rows]
    assert all(b > a for a, b in zip(steps, steps[1:], strict=False)), steps
    assert (run / "export" / "config.json").is_file()
