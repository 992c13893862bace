"""Your own env: one defined in a test file, the docs' example through `module:id`, and a plugin package."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lmrl  # noqa: F401
from lmrl.envs import (
    ExpertAgent,
    RandomAgent,
    TextEnv,
    catalog,
    make,
    register,
    run_episodes,
    unregister,
)
from lmrl.envs.checks import check_env_id
from lmrl.errors import RegistrationError, UnknownEnvError

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SRC = ROOT / "tests" / "plugin_pkg"


# --- (a) an env defined right here ----------------------------------------------------------------


class CountdownEnv(TextEnv):
    """Say the numbers from 3 down to 1, then "liftoff".

    ## Description
    A countdown. ## Action Space: text. ## Observation Space: the last number.
    ## Rewards: +1 at liftoff. ## Episode End: at liftoff or after 6 steps.
    ## Arguments: start. ## Version History: v0.
    """

    default_action_mode = "choose"

    def __init__(self, start: int = 3, render_mode=None):
        super().__init__(render_mode=render_mode)
        self.start, self.n, self.t = start, start, 0

    def _actions(self):
        words = [str(i) for i in range(1, self.start + 1)] + ["liftoff"]
        order = self.np_random.permutation(len(words))
        return tuple(words[i] for i in order)

    def _reset(self, options):
        self.n, self.t = self.start + 1, 0
        return f"Count down from {self.start}.", self._actions(), {}

    def _step(self, action):
        self.t += 1
        want = str(self.n - 1) if self.n > 1 else "liftoff"
        if action == want and want == "liftoff":
            return "Liftoff!", (), 1.0, True, False, {"success": True}
        if action == want:
            self.n -= 1
            return f"{self.n}.", self._actions(), 0.0, False, self.t >= 6, {}
        return f"Not {action[:10]!r}; say {want}.", self._actions(), -0.1, False, self.t >= 6, {}

    def expert_action(self):
        return str(self.n - 1) if self.n > 1 else "liftoff"


@pytest.fixture
def countdown_id():
    env_id = "mine/Countdown-v0"
    register(env_id, f"{__name__}:CountdownEnv", kwargs={"start": 3})
    yield env_id
    unregister(env_id)


def test_env_from_a_test_file_passes_every_check(countdown_id):
    results = check_env_id(countdown_id, episodes=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert results[-1].detail.startswith("10 episodes, success rate 1.00")


def test_env_from_a_test_file_rolls_out(countdown_id):
    expert = run_episodes(countdown_id, ExpertAgent(), n=5, keep_transcripts=1)
    assert expert.success_rate == 1.0 and expert.lengths == [4] * 5
    assert [a for _, a, _ in expert.transcripts[0]] == ["3", "2", "1", "liftoff"]
    random = run_episodes(countdown_id, RandomAgent(0), n=50)
    assert 0 <= random.success_rate < 0.5
    assert make(countdown_id, start=2).unwrapped.start == 2


# --- the docs' example, by `module:id` --------------------------------------------------------------


def docs_example() -> str:
    """The ```python block of docs/envs.md that starts with `# my_envs.py`."""
    text = (ROOT / "docs" / "envs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (code,) = [b for b in blocks if b.startswith("# my_envs.py\n")]
    return code


def test_docs_example_is_about_40_lines():
    code = re.sub(r'""".*?"""', "", docs_example(), flags=re.S)  # docstrings aside
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 45, len(lines)


@pytest.fixture
def my_envs(tmp_path, monkeypatch):
    (tmp_path / "my_envs.py").write_text(docs_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_envs", None)
    if "myorg/Thermostat-v0" in catalog._CATALOG:
        unregister("myorg/Thermostat-v0")


def test_module_id_imports_and_registers(my_envs):
    assert "myorg/Thermostat-v0" not in lmrl.envs.list_envs()
    env = make("my_envs:myorg/Thermostat-v0")
    assert type(env.unwrapped).__name__ == "ThermostatEnv"
    assert catalog.env_info("my_envs:myorg/Thermostat-v0")["id"] == "myorg/Thermostat-v0"
    results = check_env_id("my_envs:myorg/Thermostat-v0", episodes=10)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert run_episodes("my_envs:myorg/Thermostat-v0", ExpertAgent(), n=10).success_rate == 1.0


def test_module_id_errors(my_envs):
    with pytest.raises(
        RegistrationError,
        match=re.escape(
            "Cannot import module `no_such_mod_xyz` named in env id 'no_such_mod_xyz:a/B-v0': ModuleNotFoundError"
        ),
    ):
        make("no_such_mod_xyz:a/B-v0")
    (my_envs / "quiet_envs.py").write_text("X = 1\n")
    with pytest.raises(
        UnknownEnvError,
        match=re.escape("Module `quiet_envs` was imported but did not register `myorg/Quiet-v0`."),
    ):
        make("quiet_envs:myorg/Quiet-v0")


def _cli(
    *args: str, cwd: Path, pythonpath: Path, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_check_play_rollout_on_the_docs_example(my_envs, tmp_path):
    env_id = "my_envs:myorg/Thermostat-v0"
    proc = _cli("envs", "check", env_id, "--episodes", "5", cwd=tmp_path, pythonpath=my_envs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 8 checks passed" in proc.stdout
    proc = _cli(
        "envs", "rollout", env_id, "--policy", "expert", "-n", "5", cwd=tmp_path, pythonpath=my_envs
    )
    assert proc.returncode == 0, proc.stderr
    assert "100.0%" in proc.stdout
    proc = _cli(
        "envs", "play", env_id, "--seed", "0", cwd=tmp_path, pythonpath=my_envs, stdin="warmer\nq\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "Make it 21: say warmer, cooler or done." in proc.stdout


# --- (b) a plugin package installed through the entry point ----------------------------------------


def _build_wheel_by_hand(src: Path, out: Path) -> Path:
    """A wheel of tests/plugin_pkg written directly (for venvs without setuptools, e.g. Python 3.12+)."""
    name, version = "lmrl_plugin_example", "0.1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": (src / name / "__init__.py").read_text(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: lmrl-plugin-example\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: lmrl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[lmrl.envs]\nexample = lmrl_plugin_example:register_envs\n",
    }
    records = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        records.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*records, f"{dist}/RECORD,,"]) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """tests/plugin_pkg built into a wheel and installed into a private directory (never the venv)."""
    work = tmp_path_factory.mktemp("plugin")
    src = work / "src"
    shutil.copytree(
        PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    if importlib.util.find_spec("setuptools") is not None:  # build it as pip would, offline
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "wheels"), str(src)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        (wheel,) = (work / "wheels").glob("lmrl_plugin_example-*.whl")
    else:
        wheel = _build_wheel_by_hand(src, work / "wheels")
    site = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    yield site
    shutil.rmtree(work, ignore_errors=True)


def test_hand_built_wheel_matches_the_package(tmp_path):
    wheel = _build_wheel_by_hand(PLUGIN_SRC, tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read("lmrl_plugin_example-0.1.0.dist-info/entry_points.txt").decode()
    assert "lmrl_plugin_example/__init__.py" in names
    assert "example = lmrl_plugin_example:register_envs" in entry_points
    assert 'example = "lmrl_plugin_example:register_envs"' in (PLUGIN_SRC / "pyproject.toml").read_text()


def test_plugin_env_is_listed_by_the_cli(plugin_site, tmp_path):
    proc = _cli("envs", "list", cwd=tmp_path, pythonpath=plugin_site)
    assert proc.returncode == 0, proc.stderr
    assert "plugin/Echo-v0" in proc.stdout and "lmrl/Maze-v0" in proc.stdout
    assert "Skipping" not in proc.stderr


def test_plugin_env_works_in_a_fresh_interpreter(plugin_site, tmp_path):
    code = (
        "import importlib.metadata, lmrl\n"
        "from lmrl.envs import ExpertAgent, run_episodes\n"
        "eps = [ep.value for ep in importlib.metadata.entry_points(group='lmrl.envs')]\n"
        "print(eps)\n"
        "print(run_episodes('plugin/Echo-v0', ExpertAgent(), n=3).success_rate)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    found, rate = proc.stdout.splitlines()
    # The plugin's entry point, beside lmrl's own suite adapters (which register the same way).
    assert "'lmrl_plugin_example:register_envs'" in found and rate == "1.0"
    proc = _cli(
        "envs", "check", "plugin/Echo-v0", "--episodes", "3", cwd=tmp_path, pythonpath=plugin_site
    )
    assert proc.returncode == 0 and "all 8 checks passed" in proc.stdout, proc.stdout + proc.stderr


def test_plugin_is_not_installed_in_the_test_environment():
    assert (
        "plugin/Echo-v0" not in lmrl.envs.list_envs()
    )  # installed only under tmp, for subprocesses
