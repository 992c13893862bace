"""``lmrl data collect`` on multi-agent envs: demos for behaviour cloning of one seat or all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from lmrl.errors import RunError
from lmrl.pipelines.lm_train.collect import COLUMNS, collect

TTT = "lmrl/TicTacToe-v0"


def test_expert_against_random_writes_one_seat_per_episode_in_turn(tmp_path):
    result = collect(TTT, "expert", n=20, out=tmp_path / "d.parquet", seed=5, progress=False, opponent="random")
    assert result["success_rate"] == 1.0  # minimax never loses, whichever seat it has
    rows = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert result["rows"] == len(rows) and tuple(rows[0]) == COLUMNS
    by_episode: dict[int, list[dict]] = {}
    for r in rows:
        by_episode.setdefault(r["episode_id"], []).append(r)
    assert sorted(by_episode) == list(range(20))
    for i, ep in by_episode.items():
        assert {r["agent"] for r in ep} == {("player_0", "player_1")[i % 2]}  # only the expert's moves
        assert [r["turn"] for r in ep] == list(range(len(ep)))
        assert all(r["action"] == r["expert_action"] and r["action"] in r["admissible"] for r in ep)
        assert all(r["prompt"] == r["observation"] + "\nAction:" and r["response"] == " " + r["action"] for r in ep)
        assert [r["done"] for r in ep] == [False] * (len(ep) - 1) + [True]
        # The game's reward (win +1, draw 0) lands on the seat's last move, and sums to its return.
        assert all(r["reward"] == 0.0 for r in ep[:-1]) and ep[-1]["reward"] == ep[0]["episode_return"]
        assert ep[0]["episode_return"] in (0.0, 1.0) and all(r["success"] for r in ep)
    assert "you are X" in by_episode[0][0]["observation"] and "you are O" in by_episode[1][0]["observation"]
    # Against a random opponent the expert mostly wins: the demos include games a weak player loses.
    assert result["mean_return"] > 0.5


def test_without_an_opponent_the_policy_plays_every_seat(tmp_path):
    result = collect(TTT, "random", n=6, out=tmp_path / "r.parquet", seed=0, progress=False)
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    for i in range(6):
        assert {r["agent"] for r in rows if r["episode_id"] == i} == {"player_0", "player_1"}
    assert result["rows"] == len(rows) and 0.0 < result["success_rate"] < 1.0


def test_collect_rejects_an_opponent_it_cannot_use(tmp_path):
    with pytest.raises(RunError, match="multi-agent envs only"):
        collect("lmrl/Maze-v0", "expert", n=2, out=tmp_path / "m.parquet", progress=False, opponent="random")
    with pytest.raises(RunError, match="--opponent must be random, expert or a run"):
        collect(TTT, "expert", n=2, out=tmp_path / "m.parquet", progress=False, opponent="runs/missing")
    assert not (tmp_path / "m.parquet").exists()


def test_cli_collects_multiagent_demos(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "lmrl.platform.cli", "data", "collect", TTT]
    out = tmp_path / "ttt.parquet"
    proc = subprocess.run([*cli, "--opponent", "random", "-n", "4", "-o", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "expert against random" in proc.stdout and "100.0%" in proc.stdout
    assert pq.read_table(out).num_rows > 0
    proc = subprocess.run([*cli, "--opponent", "nobody", "-n", "2", "-o", str(tmp_path / "x.parquet")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--opponent must be random, expert" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_sft_on_multiagent_demos_gives_a_policy_for_every_seat(tmp_path):
    """collect (expert against random) -> finetune (SFT) -> eval plays the model in each seat."""
    from lmrl.pipelines.evaluate import evaluate
    from lmrl.pipelines.lm_train.config import FinetuneConfig
    from lmrl.pipelines.lm_train.job import run_job

    demos = collect(TTT, "expert", n=60, out=tmp_path / "ttt.parquet", seed=20_000, progress=False, opponent="random")
    cfg = FinetuneConfig.model_validate({
        "task": "sft",
        "data": {"train": [demos["path"]], "max_length": 96, "eval_fraction": 0.1},
        "model": {"preset": "tiny"},
        "training": {"steps": 40, "batch_size": 16, "lr": 3e-3, "warmup_steps": 5, "eval_every": 20, "checkpoint_every": 40},
        "resources": {"num_workers": 1},
        "run": {"output_dir": str(tmp_path), "name": "sft", "progress": False},
    })  # fmt: skip
    model = run_job(cfg) / "model"
    meta = json.loads((model / "lmrl.json").read_text())
    assert meta["env_id"] == TTT and meta["action_mode"] == "choose"
    assert meta["adapter"]["max_candidates"] == 9  # every square of the empty board is offered
    report = evaluate(str(model), n=10, seed=0, out_dir=str(tmp_path / "eval"))
    assert report["multiagent"] and report["seat_plan"] == {"player_0": "policy", "player_1": "policy"}
    assert set(report["per_agent"]) == {"player_0", "player_1"}
    assert all(0.0 <= r["vs_random_success_rate"] <= 1.0 for r in report["per_agent"].values())
    assert report["expert_success_rate"] == 1.0
    proc = subprocess.run(  # as a user runs it: the per-seat table
        [sys.executable, "-m", "lmrl.platform.cli", "eval", str(model), "-n", "4", "--out", str(tmp_path / "cli_eval")],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "per seat (lmrl/TicTacToe-v0; plan: player_0=policy, player_1=policy)" in proc.stdout
    assert "against random" in proc.stdout and "player_1" in proc.stdout
