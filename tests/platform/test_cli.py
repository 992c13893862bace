"""The ``lmrl`` command line, run as a user runs it: in a subprocess.

A few tests call :func:`lmrl.platform.cli.main` in-process instead, to drive
a failing check or an interrupt, or to render the ``eval`` / ``quickstart`` /
``train`` output with a stand-in for the training pipelines (which start Ray
and train; their own tests run them for real).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lmrl
from lmrl.errors import UnknownEnvError
from lmrl.platform import cli

MAZE = "lmrl/Maze-v0"
GUESS = "lmrl/GuessNumber-v0"


def run_cli(
    *args: str, cwd: Path, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # wide tables: rows stay on one line
    return subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def assert_user_error(proc: subprocess.CompletedProcess, starts: str) -> None:
    """Exit 2, one ``error:`` line on stderr, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: " + starts), lines[0]


# --- top level -------------------------------------------------------------------------------


def test_version(tmp_path):
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"lmrl {lmrl.__version__}"


def test_help_lists_the_commands(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("quickstart", "train", "eval", "envs", "config"):
        assert command in proc.stdout


def test_no_command_is_a_usage_error(tmp_path):
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: lmrl")


# --- envs ------------------------------------------------------------------------------------


def test_envs_list(tmp_path):
    from lmrl.envs import catalog

    proc = run_cli("envs", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for env_id in catalog.list_envs():
        assert env_id in proc.stdout
    maze_row = next(line for line in proc.stdout.splitlines() if MAZE in line)
    assert "choose" in maze_row and "16" in maze_row and "Find the goal" in maze_row


def test_envs_info(tmp_path):
    proc = run_cli("envs", "info", MAZE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in (
        "lmrl.envs.maze:MazeEnv",
        "Text(length 0..512)",
        "Dict(actions: Sequence(Text(length 0..512)), text: Text(length 0..4096))",
        "max_steps=16",
        "## Action Space",
        "## Version History",
    ):
        assert text in proc.stdout


def test_envs_info_multiagent(tmp_path):
    proc = run_cli("envs", "info", "lmrl/TicTacToe-v0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in ("lmrl.envs.multiagent.tictactoe:TicTacToeEnv", "PettingZoo AEC", "player_0, player_1", "max_illegal=3"):
        assert text in proc.stdout
    proc = run_cli("envs", "info", "lmrl/Referential-v0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "PettingZoo Parallel" in proc.stdout and "speaker_0: action space" in proc.stdout


def test_envs_check(tmp_path):
    proc = run_cli("envs", "check", MAZE, "--episodes", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    assert "checks passed" in proc.stdout


def test_envs_check_exit_code_1_on_a_failing_check(monkeypatch, capsys):
    from lmrl.envs import checks

    results = [
        checks.CheckResult("make", True, "ok"),
        checks.CheckResult("determinism", False, "differs at step 3"),
    ]
    monkeypatch.setattr(checks, "check_env_id", lambda env_id, seed=0, episodes=20: results)
    assert cli.main(["envs", "check", MAZE]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "differs at step 3" in out
    assert "1 of 2 checks failed: determinism" in out


def test_envs_rollout_expert(tmp_path):
    proc = run_cli("envs", "rollout", MAZE, "--policy", "expert", "-n", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "expert" in line and "%" in line)
    assert "100.0%" in row and " 5 " in row
    assert "--- episode 1 (seed 0)" in proc.stdout  # one transcript by default
    assert "--- episode 2" not in proc.stdout
    assert "> " in proc.stdout and "reached the goal" in proc.stdout


def test_envs_rollout_random(tmp_path):
    proc = run_cli(
        "envs", "rollout", MAZE, "--policy", "random", "-n", "5", "--show", "2", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "random" in line and "%" in line)
    assert " 5 " in row
    assert "--- episode 2 (seed 1)" in proc.stdout


def test_envs_rollout_unknown_policy_path(tmp_path):
    proc = run_cli("envs", "rollout", MAZE, "--policy", "nowhere/model", cwd=tmp_path)
    assert_user_error(
        proc,
        "--policy must be random, expert or a run / exported model directory, got 'nowhere/model'",
    )


@pytest.mark.parametrize("command", ["info", "check", "play", "rollout"])
def test_unknown_env_id(tmp_path, command):
    proc = run_cli("envs", command, "lmrl/Maz-v0", cwd=tmp_path)
    assert_user_error(proc, "Unknown env id `lmrl/Maz-v0`. Did you mean `lmrl/Maze-v0`?")


def _expert_guesses(seed: int) -> list[str]:
    """The binary-search guesses that win ``GuessNumber`` with this seed."""
    from lmrl.envs import catalog
    from lmrl.envs.agents import ExpertAgent

    env, agent, guesses = catalog.make(GUESS), ExpertAgent(), []
    obs, info = env.reset(seed=seed)
    done = False
    while not done:
        guesses.append(agent.act(obs, info, env))
        obs, _, terminated, truncated, info = env.step(guesses[-1])
        done = terminated or truncated
    assert info["success"]
    return guesses


def test_envs_play_guess_number_from_stdin(tmp_path):
    guesses = _expert_guesses(seed=3)
    proc = run_cli(
        "envs",
        "play",
        GUESS,
        "--seed",
        "3",
        cwd=tmp_path,
        stdin="\n".join(["hello", *guesses]) + "\n",
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Guess the number between 1 and 16. You have 6 guesses." in out
    assert "I could not read a whole number in 'hello'" in out
    assert "> hello   reward -0.2" in out
    assert f"Your guess {guesses[-1]} is correct!" in out
    assert f"episode over: success, return {1 - 0.2 - 0.05 * (len(guesses) - 1):+.3g}" in out


def test_envs_play_quit_and_end_of_input(tmp_path):
    proc = run_cli("envs", "play", GUESS, "--seed", "0", cwd=tmp_path, stdin="q\n")
    assert proc.returncode == 0, proc.stderr
    assert "quit after 0 steps" in proc.stdout
    proc = run_cli("envs", "play", GUESS, "--seed", "0", cwd=tmp_path, stdin="8\n")  # then EOF
    assert proc.returncode == 0, proc.stderr
    assert "quit after 1 step, return -0.05" in proc.stdout


def test_envs_play_numbers_pick_admissible_actions(tmp_path):
    from lmrl.envs import catalog

    env = catalog.make(MAZE)
    obs, _ = env.reset(seed=0)
    first = obs["actions"][0]
    proc = run_cli("envs", "play", MAZE, "--seed", "0", cwd=tmp_path, stdin="1\n99\nq\n")
    assert proc.returncode == 0, proc.stderr
    assert f"  1. {first}" in proc.stdout
    assert f"> {first}   reward" in proc.stdout
    assert "pick a number from 1 to" in proc.stdout
    assert "quit after 1 step" in proc.stdout


# --- train / config / eval / quickstart ------------------------------------------------------


def test_train_bad_config_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("algorithm:\n  lrr: 0.1\n")
    proc = run_cli("train", "bad.yaml", cwd=tmp_path)
    assert_user_error(proc, "unknown key `algorithm.lrr` in bad.yaml. Did you mean `algorithm.lr`?")


def test_train_yaml_syntax_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("algorithm:\n  lr: 0.1\n   gamma: 3\n")
    proc = run_cli("train", "bad.yaml", cwd=tmp_path)
    assert_user_error(
        proc, "bad.yaml: YAML syntax error at line 3, column 9: mapping values are not allowed here"
    )


def test_train_bad_override_and_missing_file(tmp_path):
    assert_user_error(
        run_cli("train", "missing.yaml", cwd=tmp_path), "config file not found: missing.yaml;"
    )
    (tmp_path / "ok.yaml").write_text("run:\n  seed: 1\n")
    assert_user_error(
        run_cli("train", "ok.yaml", "--set", "algorithm.lr", cwd=tmp_path),
        "--set expects key=value, got 'algorithm.lr'",
    )


def test_train_checks_multiagent_env_kwargs(tmp_path):
    from lmrl.platform.cli.train import _check_env_config

    _check_env_config("lmrl/Referential-v0", {"n_distractors": 2})  # a multi-agent id is a valid env.id
    (tmp_path / "ma.yaml").write_text("policy:\n  max_candidates: 9\n")
    proc = run_cli("train", "ma.yaml", "--set", "env.id=lmrl/TicTacToe-v0", "--set", "env.kwargs={max_ilegal: 2}", cwd=tmp_path)
    assert_user_error(proc, "`env.kwargs` {'max_ilegal': 2} do not fit lmrl/TicTacToe-v0")
    proc = run_cli("train", "ma.yaml", "--set", "env.id=lmrl/Referential-v0", "--set", "env.kwargs={n_distractors: 9}", cwd=tmp_path)
    assert_user_error(proc, "`env.kwargs` of lmrl/Referential-v0: n_distractors must be in 1..7, got 9")


def test_train_needs_a_config_or_resume(tmp_path):
    proc = run_cli("train", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        "give a run config (lmrl train CONFIG.yaml) or a run to resume (--resume RUN_DIR)"
        in proc.stderr
    )


def test_train_resume_errors(tmp_path):
    assert_user_error(
        run_cli("train", "--resume", "runs/none", cwd=tmp_path),
        "--resume expects a run directory, got 'runs/none', which does not exist;",
    )
    (tmp_path / "empty").mkdir()
    assert_user_error(
        run_cli("train", "--resume", "empty", cwd=tmp_path), "no config.yaml in empty;"
    )


def test_config_command_prints_loadable_yaml(tmp_path):
    from lmrl.platform.config import load_config

    proc = run_cli(
        "config", "--set", "algorithm.lr=0.01", "--set", "run.stop.iterations=null", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "out.yaml").write_text(proc.stdout)
    assert load_config(str(tmp_path / "out.yaml")) == load_config(
        None, ["algorithm.lr=0.01", "run.stop.iterations=null"]
    )


def test_lmrl_error_and_interrupt_handling(monkeypatch, capsys):
    from lmrl.envs import catalog

    def unknown(**kwargs):
        raise UnknownEnvError("Unknown env id `x`.\nRun `lmrl envs list`.")

    monkeypatch.setattr(catalog, "list_envs", unknown)
    assert cli.main(["envs", "list"]) == 2
    assert capsys.readouterr().err == "error: Unknown env id `x`. Run `lmrl envs list`.\n"

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "list_envs", interrupted)
    assert cli.main(["envs", "list"]) == 130
    assert "interrupted" in capsys.readouterr().err
