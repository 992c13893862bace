"""The README's promises: its first commands, its config example, its CLI examples, and CI."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml

from lmrl.pipelines.config import RunConfig
from lmrl.platform.cli import build_parser
from lmrl.platform.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e . && lmrl quickstart"
TEST = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e '.[test]' && pytest"


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_readme_opens_with_exactly_the_two_commands():
    first_block = re.search(r"```\w*\n(.*?)```", README, flags=re.S)
    assert README[: first_block.start()].strip() == "# lmrl"
    assert first_block.group(1).splitlines() == [INSTALL, TEST]
    note = README[first_block.end() :].strip().splitlines()[0]
    assert "torch==2.13.0" in note and "CPU" in note and "GPU" in note


def test_ci_runs_the_readme_test_command():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert "set -euo pipefail" in lines
    assert lines[-1] == TEST


def _flat_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        keys.add(prefix + key)
        if isinstance(value, dict) and value:
            keys |= _flat_keys(value, f"{prefix}{key}.")
    return keys


def test_readme_config_example_sets_every_key_to_its_default(tmp_path):
    (example,) = code_blocks(section("Config format"), "yaml")
    path = tmp_path / "example.yaml"
    path.write_text(example)
    assert load_config(str(path)) == RunConfig()
    assert _flat_keys(yaml.safe_load(example)) == _flat_keys(
        yaml.safe_load(dump_config(RunConfig()))
    )


def test_readme_cli_examples_parse():
    parser = build_parser()
    examples = [
        line
        for block in code_blocks(section("The command line"), "bash")
        for line in block.splitlines()
        if line.startswith("lmrl ") and "--version" not in line
    ]
    assert len(examples) >= 10
    for line in examples:
        command = line.split("#", 1)[0]
        command = re.sub(r"\[[^\]]*\]", "", command).split(">", 1)[
            0
        ]  # optional parts, redirections
        args = parser.parse_args(shlex.split(command)[1:])
        assert callable(args.func), line


def test_readme_has_the_sections():
    for title in (
        "What lmrl is",
        "The command line",
        "Config format",
        "The env catalog",
        "Project layout",
        "Results",
    ):
        assert f"\n## {title}\n" in README


def test_readme_lists_every_builtin_env():
    from lmrl.envs import catalog

    table = section("The env catalog")
    for env_id in catalog.list_envs():
        if env_id.startswith("lmrl/"):
            assert f"`{env_id}`" in table, env_id


def test_architecture_doc_names_the_placements():
    text = (ROOT / "docs" / "architecture.md").read_text()
    for needle in (
        "lmrl/errors.py",
        "lmrl/pipelines/config.py",
        "lmrl/platform/config.py",
        "upward",
    ):
        assert needle in text
