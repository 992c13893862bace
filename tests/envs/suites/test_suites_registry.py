"""Suite registration: lmrl's own entry points, and ids whose extra is missing listed as unavailable."""

from __future__ import annotations

import importlib.metadata

import pytest

import lmrl
from lmrl.envs import catalog
from lmrl.envs.suites import install_hint, missing_modules, register_suite
from lmrl.envs.suites import textworld_express as twx
from lmrl.errors import UnknownEnvError

FAKE = {"nosuite/Thing-v0": ("lmrl.envs.maze:MazeEnv", {})}


@pytest.fixture
def unavailable_suite():
    """A suite whose package really is not installed, registered the way the real ones are."""
    register_suite(FAKE, suite="NoSuite", extra="nosuite", modules=("lmrl_no_such_package_x",))
    yield "nosuite/Thing-v0"
    catalog._UNAVAILABLE.pop("nosuite/Thing-v0", None)


def test_lmrl_declares_the_suite_entry_points():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="lmrl.envs")}
    assert eps.get("twx") == "lmrl.envs.suites.textworld_express:register_envs"
    assert eps.get("babyai") == "lmrl.envs.suites.babyai_text:register_envs"
    assert eps.get("textarena") == "lmrl.envs.suites.textarena:register_envs"
    assert eps.get("reasoning-gym") == "lmrl.envs.suites.reasoning_gym:register_envs"


def test_missing_modules_checks_without_importing():
    assert missing_modules(["json", "lmrl_no_such_package_x"]) == ["lmrl_no_such_package_x"]


def test_unavailable_id_listed_with_install_command(unavailable_suite):
    assert unavailable_suite not in lmrl.envs.list_envs()
    assert unavailable_suite in catalog.list_envs(include_unavailable=True)
    info = catalog.env_info(unavailable_suite)
    assert info["default_action_mode"] == "unavailable"
    assert info["doc"].startswith("(unavailable)") and install_hint("nosuite") in info["doc"]


def test_making_an_unavailable_id_is_one_clear_line(unavailable_suite):
    with pytest.raises(UnknownEnvError) as caught:
        lmrl.envs.make(unavailable_suite)
    message = str(caught.value)
    assert message == (
        "`nosuite/Thing-v0` needs the NoSuite suite (lmrl_no_such_package_x not installed): "
        "pip install 'lmrl[nosuite]'"
    )
    assert "\n" not in message


def test_registering_once_available_replaces_the_unavailable_entry(unavailable_suite):
    catalog.register(unavailable_suite, "lmrl.envs.maze:MazeEnv")
    try:
        assert unavailable_suite in lmrl.envs.list_envs()
        assert catalog.env_info(unavailable_suite)["default_action_mode"] == "choose"
    finally:
        catalog.unregister(unavailable_suite)


def test_twx_without_java_is_unavailable_with_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "")
    problem = twx._java_problem()
    assert problem is not None and "Java 17+ on PATH" in problem


def test_cli_reaches_suite_ids_through_the_entry_points(tmp_path):
    """A fresh process: `import lmrl` loads the entry points, so the CLI knows the suite ids."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("reasoning_gym")
    lmrl_cli = Path(sys.executable).with_name("lmrl")
    proc = subprocess.run(
        [str(lmrl_cli), "envs", "check", "rg/leg_counting-v0", "--episodes", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 8 checks passed" in proc.stdout


def test_training_runs_evaluate_on_held_out_seeds():
    """`lmrl train`'s final evaluation starts at run.seed + HELD_OUT_SEED, the seeds the suites
    map to their held-out splits (read from the source: importing the loop needs Ray)."""
    import ast
    from pathlib import Path

    from lmrl.envs.base import HELD_OUT_SEED

    assert HELD_OUT_SEED == 1_000_000  # the results' `lmrl eval --seed 1000000` rows use it
    source = Path(lmrl.__file__).with_name("pipelines").joinpath("rl", "loop.py").read_text()
    tree = ast.parse(source)
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("lmrl.envs.base", "HELD_OUT_SEED") in imported
    seeds = [
        ast.unparse(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "evaluate"
        for kw in node.keywords
        if kw.arg == "seed"
    ]
    assert seeds == ["cfg.run.seed + HELD_OUT_SEED"]
