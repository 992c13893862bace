"""`lmrl envs` commands on multi-agent (PettingZoo) envs, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def lmrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_shows_multiagent_envs_with_their_agents():
    proc = lmrl("envs", "list")
    assert proc.returncode == 0, proc.stderr
    assert "lmrl/TicTacToe-v0" in proc.stdout and "[aec: player_0, player_1]" in proc.stdout
    assert "[parallel: speaker_0, listener_0]" in proc.stdout


def test_check_and_rollout_a_multiagent_env():
    proc = lmrl("envs", "check", "lmrl/Referential-v0", "--episodes", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks passed" in proc.stdout
    proc = lmrl("envs", "rollout", "lmrl/Referential-v0", "--policy", "expert", "-n", "10")
    assert proc.returncode == 0, proc.stderr
    assert "speaker_0" in proc.stdout and "100.0%" in proc.stdout


def test_multiagent_rollout_rejects_a_policy_path():
    proc = lmrl("envs", "rollout", "lmrl/TicTacToe-v0", "--policy", "runs/x", "-n", "2")
    assert proc.returncode == 2
    assert "multi-agent rollouts take random or expert" in proc.stderr and "Traceback" not in proc.stderr
