"""Bench hygiene: benchmarks run from a venv that is not activated, and quick runs keep off full runs.

A new user calls ``.venv/bin/lmrl bench --quick`` without activating the venv:
no ``lmrl`` (nor ``py-spy``) on ``PATH``. Subprocesses must start from
``sys.executable``, and quick-size JSON must never replace the recorded
full-run JSON in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import memory  # noqa: E402

from lmrl.platform.cli.bench import results_dir  # noqa: E402

#: Console scripts a benchmark must not look up on PATH by name.
BY_NAME = {"lmrl", "py-spy", "ray", "python", "python3", "pytest"}


def _path_without_venv() -> str:
    """``PATH`` without the folder of this interpreter (the venv's ``bin``)."""
    venv_bin = Path(sys.executable).parent.resolve()
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != venv_bin]
    return os.pathsep.join(kept or ["/usr/bin", "/bin"])


def _stripped_env() -> dict[str, str]:
    path = _path_without_venv()
    if shutil.which("lmrl", path=path):
        pytest.skip("an `lmrl` outside this venv is on PATH: stripping the venv proves nothing here")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PATH": path, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_no_benchmark_starts_a_console_script_by_name() -> None:
    offenders = []
    for script in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(), str(script))):
            if isinstance(node, ast.List) and node.elts:
                first = node.elts[0]
                if isinstance(first, ast.Constant) and first.value in BY_NAME:
                    offenders.append(f"{script.name}:{node.lineno}: [{first.value!r}, ...]")
    assert not offenders, "start these from sys.executable (or common.tool):\n" + "\n".join(offenders)


def test_memory_commands_run_with_the_venv_off_path(tmp_path: Path) -> None:
    env = _stripped_env()
    for cmd, usage in [
        (memory.quickstart_command(tmp_path / "qs", quick=True), "usage: lmrl quickstart"),
        (memory.serve_command(str(tmp_path / "policy"), 8000, 8001), "usage: lmrl serve"),
    ]:
        assert cmd[0] == sys.executable
        proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert usage in proc.stdout


def test_tool_finds_scripts_beside_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_without_venv())
    beside = Path(sys.executable).parent / "pytest"
    if not beside.is_file():
        pytest.skip("pytest is not installed as a script beside this interpreter")
    assert common.tool("pytest") == str(beside)
    with pytest.raises(SystemExit, match="not installed beside"):
        common.tool("no-such-tool-lmrl")


def _snapshot() -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(RESULTS.glob("*.json"))}


def test_quick_bench_from_an_unactivated_venv_leaves_the_recorded_results_alone(tmp_path: Path) -> None:
    env = _stripped_env()
    before = _snapshot()
    assert "generation.json" in before and not json.loads(before["generation.json"][0])["quick"]
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", "bench", "--quick", "--only", "generation",
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _snapshot() == before  # bytes and mtimes of every recorded JSON
    quick = RESULTS / "quick" / "generation.json"
    assert quick.stat().st_mtime >= started - 1
    data = json.loads(quick.read_text())
    assert data["quick"] is True and data["target"]["applies_to"] == "full sizes"
    assert "is for the full sizes; this quick run is" in proc.stdout  # not judged as met or missed
    assert "MISSED" not in proc.stdout
    summary = json.loads((RESULTS / "quick" / "summary.json").read_text())
    assert summary["quick"] is True and summary["benchmarks"][0]["status"] == "ok"


def test_the_quick_folder_is_git_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = "benchmarks/results/quick/generation.json"
    proc = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT, capture_output=True)
    assert proc.returncode == 0, f"{probe} is not git-ignored"
    proc = subprocess.run(["git", "check-ignore", "-q", "benchmarks/results/generation.json"], cwd=ROOT)
    assert proc.returncode == 1  # the recorded runs are not


def _args(out: Path | None, quick: bool) -> argparse.Namespace:
    return argparse.Namespace(out=None if out is None else str(out), quick=quick, benchmark="generation")


def test_out_dir_sends_quick_runs_to_the_quick_folder(tmp_path: Path) -> None:
    assert common.out_dir(_args(None, quick=True)) == RESULTS / "quick"
    assert common.out_dir(_args(None, quick=False)) == RESULTS
    assert common.out_dir(_args(tmp_path, quick=True)) == tmp_path
    assert results_dir(BENCH, None, quick=True) == RESULTS / "quick"
    assert results_dir(BENCH, None, quick=False) == RESULTS
    assert results_dir(BENCH, str(tmp_path), quick=True) == tmp_path


def test_a_quick_run_never_overwrites_a_full_run(tmp_path: Path) -> None:
    full = tmp_path / "generation.json"
    full.write_text(json.dumps({"benchmark": "generation", "quick": False, "ratio": 1.05}))
    recorded = full.read_bytes()
    with pytest.raises(SystemExit, match="holds a full run"):
        common.check_out(full, quick=True)
    with pytest.raises(SystemExit, match="holds a full run"):  # report() checks again before writing
        common.report(
            "generation", _args(tmp_path, quick=True), title="t", columns=["a"], rows=[[1]],
            lmrl={}, baseline={}, ratio_value=None, ratio_meaning="m",
        )  # fmt: skip
    assert full.read_bytes() == recorded
    common.check_out(full, quick=False)  # a full run may replace a full run
    full.write_text(json.dumps({"quick": True}))
    common.check_out(full, quick=True)  # and a quick run a quick one
    common.check_out(tmp_path / "absent.json", quick=True)


def test_a_quick_script_with_out_on_a_full_run_stops_before_measuring(tmp_path: Path) -> None:
    full = tmp_path / "generation.json"
    full.write_text(json.dumps({"benchmark": "generation", "quick": False}))
    recorded = full.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(BENCH / "generation.py"), "--quick", "--out", str(tmp_path),
         "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "holds a full run; a --quick run does not overwrite it" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert full.read_bytes() == recorded
    assert not (tmp_path / "work").exists()  # nothing was built or measured


def test_real_model_bench_runs_its_parts_side_by_side(tmp_path: Path, tiny_model_dir: str) -> None:
    """``benchmarks/real_model.py --quick`` with any model: both sides of each part, same scores."""
    import real_model

    assert real_model.main(["--quick", "--model", tiny_model_dir, "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "real_model.json").read_text())
    assert data["quick"] is True and data["lmrl"]["rl"] is None
    gen = data["lmrl"]["generation"]
    assert [g["batch"] for g in gen] == [1, 2]
    assert all(g["lmrl_tokens_per_s"] > 0 and g["hf_tokens_per_s"] > 0 for g in gen)
    scoring = data["lmrl"]["choose_scoring"]
    assert scoring["max_score_diff"] < 1e-3 and scoring["mean_legal_actions"] > 1
    assert set(scoring["fwd_bwd_s"]) == {"shared", "repeated"}
    assert data["ratio"] == min(g["ratio"] for g in gen)
