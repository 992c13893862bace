"""A real local head for a test module: `lmrl cluster up --local` on free ports, then down."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def local_head(
    lmrl: Callable[..., subprocess.CompletedProcess], lmrl_home: Path, num_cpus: int
) -> Iterator[tuple[dict[str, Any], subprocess.CompletedProcess]]:
    """Starts a head with ``lmrl(...)`` (the CLI in the test's environment), stops it after.

    Yields the head's ``local_cluster.json`` state and the output of ``cluster up``. On exit,
    ``lmrl cluster down`` must succeed and leave no process of the head running.
    """
    ray_temp = tempfile.mkdtemp(prefix="lmrl-ray-test-")  # short: Ray's socket paths live there
    start = time.perf_counter()
    proc = lmrl(
        "cluster", "up", "--local", "--port", "0", "--dashboard-port", "0",
        "--num-cpus", str(num_cpus), "--temp-dir", ray_temp,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    state = json.loads((lmrl_home / "local_cluster.json").read_text())
    print(f"\nhead up in {time.perf_counter() - start:.1f} s at {state['dashboard_url']}")
    try:
        yield state, proc
    finally:
        down = lmrl("cluster", "down", timeout=120)
        leftover = subprocess.run(
            ["ps", "-eww", "-o", "args="], capture_output=True, text=True
        ).stdout
        assert down.returncode == 0, down.stderr
        assert state["temp_dir"] + "/" not in leftover, (
            "processes of the test head survived `lmrl cluster down`"
        )
        shutil.rmtree(ray_temp, ignore_errors=True)
