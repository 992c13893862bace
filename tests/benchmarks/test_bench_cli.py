"""``lmrl bench``: the fastest benchmark end to end as a real subprocess, and its one-line errors.

These tests check what the command writes, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LMRL = [sys.executable, "-m", "lmrl.platform.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LMRL, "bench", *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def test_bench_quick_generation_writes_both_sides_and_the_ratio(tmp_path: Path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    proc = _bench("--quick", "--only", "generation", "--out", str(out), "--work", str(work))
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "generation.json").read_text())
    assert data["benchmark"] == "generation" and data["quick"] is True
    assert data["lmrl"]["tokens_per_s"] > 0
    assert data["baseline"]["tokens_per_s"] > 0
    assert data["baseline"]["name"] == "transformers generate"
    assert data["ratio"] == pytest.approx(
        data["lmrl"]["tokens_per_s"] / data["baseline"]["tokens_per_s"], rel=0.01
    )
    assert data["target"]["min"] == 0.9 and isinstance(data["target"]["met"], bool)
    assert data["machine"]["cpus"] >= 1 and len(data["machine"]["load_average"]) == 3
    for row in data["rows"]:  # every (model, batch) row has both sides, same shapes
        assert row["lmrl_tokens_per_s"] > 0 and row["hf_tokens_per_s"] > 0 and row["ratio"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["benchmark"] for r in summary["benchmarks"]] == ["generation"]
    assert summary["benchmarks"][0]["status"] == "ok"
    assert summary["benchmarks"][0]["ratio"] == data["ratio"]
    assert "generate" in proc.stdout and "lmrl bench" in proc.stdout  # the tables


def test_bench_quick_choose_scoring_checks_equal_scores_and_times_both_sides(tmp_path: Path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    proc = _bench("--quick", "--only", "choose_scoring", "--out", str(out), "--work", str(work))
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "choose_scoring.json").read_text())
    assert set(data["sides"]) == {"lmrl/Maze-v0", "lmrl/TicTacToe-v0"}
    for side in data["sides"].values():
        assert side["max_score_diff"] < 1e-4  # the two implementations agree
        assert all(v > 0 for v in side["train_s"].values()) and all(v > 0 for v in side["act_s"].values())
    assert data["ratio"] == min(s["speedup"]["train"] for s in data["sides"].values())


def test_bench_quick_startup_times_both_sides_in_fresh_processes(tmp_path: Path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    proc = _bench("--quick", "--only", "startup", "--out", str(out), "--work", str(work))
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "startup.json").read_text())
    for side in (data["lmrl"], data["baseline"]):
        assert len(side["trials"]) == 1
        trial = side["trials"][0]  # each stage timed, and they add up to the time to the first update
        assert all(trial[k] > 0 for k in ("ray_and_imports_s", "build_s", "first_iteration_s"))
        assert trial["to_first_update_s"] == pytest.approx(
            trial["ray_and_imports_s"] + trial["build_s"] + trial["first_iteration_s"], abs=0.01
        )
    assert data["ratio"] == pytest.approx(
        data["baseline"]["to_first_update_s"] / data["lmrl"]["to_first_update_s"], rel=0.01
    )


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("genration", "Did you mean `generation`?"),
        ("nope", "choose from generation, choose_scoring, rl_throughput"),
    ],
)
def test_bench_unknown_name_is_a_one_line_error(tmp_path: Path, name: str, hint: str) -> None:
    proc = _bench("--only", "generation", name, "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: unknown benchmark `{name}`")
    assert hint in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing ran


def test_bench_variants_run_an_existing_script_with_arguments_it_accepts() -> None:
    from lmrl.platform.cli.bench import BENCHMARKS, VARIANTS, benchmarks_dir

    folder = benchmarks_dir()
    for name, (script, extra) in VARIANTS.items():
        assert name in BENCHMARKS and (folder / f"{script}.py").is_file()
        # argparse checks --model's choices before it reaches --help
        proc = subprocess.run(
            [sys.executable, str(folder / f"{script}.py"), *extra, "--help"],
            capture_output=True, text=True, timeout=60, env=ENV,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        bad = subprocess.run(
            [sys.executable, str(folder / f"{script}.py"), *extra[:-1], "no-such-model", "--help"],
            capture_output=True, text=True, timeout=60, env=ENV,
        )  # fmt: skip
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
