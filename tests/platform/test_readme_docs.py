"""The docs against the code: every command in them runs through the real CLI parser, every
run config in them loads, every file they point to exists, every env id they name is registered,
and CI runs the README's test command.

These tests check what the docs tell a user to do, not their wording.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lmrl.pipelines.config import RunConfig
from lmrl.platform.cli import build_parser
from lmrl.platform.config import dump_config, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
README = (ROOT / "README.md").read_text()

#: Subcommands whose ``--set`` overrides (and YAML file, when it is in the repo) make a RunConfig.
RUN_CONFIG_COMMANDS = {"train", "config", "quickstart", "submit"}
#: Paths the docs name that a run writes, not the repository.
WRITTEN_BY_RUNS = {
    "benchmarks/results/gpu.json",  # by benchmarks/gpu.sh, on a GPU
    "benchmarks/results/quick",  # by lmrl bench --quick
}


def code_blocks(text: str, langs: tuple[str, ...]) -> list[str]:
    """The bodies of the fenced code blocks of ``text`` in one of ``langs``."""
    return [
        body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S) if lang in langs
    ]


def doc_commands() -> Iterator[tuple[str, list[str]]]:
    """``(where, argv)`` for each ``lmrl`` command in the docs' shell blocks (argv after ``lmrl``).

    Comments and ``[optional parts]`` are removed, continuation lines joined; a command ends at
    a pipe, ``&&``, ``;`` or a redirection, and may follow ``... --`` (``ray job submit -- lmrl``).
    """
    for doc in DOCS:
        for block in code_blocks(doc.read_text(), ("bash", "sh", "shell")):
            for line in block.replace("\\\n", " ").splitlines():
                text = re.sub(r"\s\[[^\]]*\]", "", line)
                tokens = shlex.split(text, comments=True)
                command: list[str] | None = None
                for token in [*tokens, ";"]:
                    if token in {"|", "&&", ";", ">", ">>", "2>"} or token.startswith(">"):
                        if command is not None:
                            yield f"{doc.name}: {line.strip()}", command
                        command = None
                    elif command is not None:
                        command.append(token)
                    elif token == "lmrl":
                        command = []


COMMANDS = list(doc_commands())


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) >= 100, len(COMMANDS)
    assert {argv[0] for _, argv in COMMANDS if argv} >= {"train", "eval", "envs", "serve", "submit"}


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_command_parses(where, argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if argv == ["--version"] and exc.code == 0:
            return
        pytest.fail(f"{where}: the CLI rejects it (exit {exc.code})")
    assert callable(args.func), where


def _set_values(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == "--set"]


def _config_path(argv: list[str]) -> Path | None:
    """The YAML file a documented command runs, if it is one of the repository's."""
    for token in argv[1:]:
        if token.endswith((".yaml", ".yml")) and not token.startswith("-"):
            if token.startswith("examples/"):
                assert (ROOT / token).is_file(), f"{token} does not exist"
            return ROOT / token if (ROOT / token).is_file() else None
    return None


RUN_COMMANDS = [
    (where, argv)
    for where, argv in COMMANDS
    if argv
    and argv[0] in RUN_CONFIG_COMMANDS
    and "--pipeline" not in argv  # submit's other pipelines have their own schemas
    and (_set_values(argv) or any(t.startswith("examples/") for t in argv))
]


#: Documented commands that are wrong today, each with what is wrong: strict xfails, so fixing the
#: doc makes the test say so.
KNOWN_DOC_BUGS: dict[str, str] = {}


def _known_bug(argv: list[str]) -> list[pytest.MarkDecorator]:
    reasons = [reason for token, reason in KNOWN_DOC_BUGS.items() if token in argv]
    return [pytest.mark.xfail(reason=reasons[0], strict=True)] if reasons else []


@pytest.mark.parametrize(
    ("where", "argv"),
    [pytest.param(where, argv, id=where, marks=_known_bug(argv)) for where, argv in RUN_COMMANDS],
)
def test_every_documented_run_config_and_override_loads(where, argv):
    """The repo's config files the docs run, with the docs' ``--set`` overrides, validate."""
    load_config(_config_path(argv), _set_values(argv))


def _flat_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        keys.add(prefix + key)
        if isinstance(value, dict) and value:
            keys |= _flat_keys(value, f"{prefix}{key}.")
    return keys


def test_readme_config_example_sets_every_key_to_its_default(tmp_path):
    """The README's full config (the YAML block with every section) is the defaults, key for key."""
    sections = set(RunConfig.model_fields) | {
        f.alias for f in RunConfig.model_fields.values() if f.alias
    }
    (example,) = [
        block
        for block in code_blocks(README, ("yaml",))
        if isinstance(yaml.safe_load(block), dict)
        and {"env", "policy", "algorithm", "run"} <= set(yaml.safe_load(block))
    ]
    assert set(yaml.safe_load(example)) <= sections
    path = tmp_path / "example.yaml"
    path.write_text(example)
    assert load_config(str(path)) == RunConfig()
    assert _flat_keys(yaml.safe_load(example)) == _flat_keys(
        yaml.safe_load(dump_config(RunConfig()))
    )


def _run_config_blocks() -> Iterator[tuple[str, str]]:
    sections = set(RunConfig.model_fields) | {
        f.alias for f in RunConfig.model_fields.values() if f.alias
    }
    for doc in DOCS:
        for block in code_blocks(doc.read_text(), ("yaml", "yml")):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and data and set(data) <= sections:
                yield f"{doc.name}: {block.splitlines()[0]}", block


RUN_CONFIG_BLOCKS = list(_run_config_blocks())


@pytest.mark.parametrize(
    ("where", "block"), RUN_CONFIG_BLOCKS, ids=[w for w, _ in RUN_CONFIG_BLOCKS]
)
def test_every_documented_run_config_block_loads(where, block, tmp_path):
    path = tmp_path / "doc.yaml"
    path.write_text(block)
    load_config(path)


def _repo_paths() -> Iterator[tuple[str, str]]:
    """Relative links, and repository paths in backticks, with the doc naming them."""
    for doc in DOCS:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not target.startswith(("http://", "https://", "#", "mailto:")):
                path = (doc.parent / target.split("#")[0]).resolve()
                yield doc.name, str(path.relative_to(ROOT))
        for path in re.findall(r"`((?:lmrl|tests|docs|examples|benchmarks|\.ci)/[\w./-]+)`", text):
            if re.match(r"lmrl/[A-Z]", path):  # an env id, not a file
                continue
            if re.search(r"/[A-Z_]+(\.\w+)?$", path):  # a placeholder, e.g. results/NAME.json
                continue
            yield doc.name, path.rstrip("/.")


def test_every_file_the_docs_point_to_exists():
    missing = sorted(
        {
            f"{doc}: {path}"
            for doc, path in _repo_paths()
            if path not in WRITTEN_BY_RUNS and not (ROOT / path).exists()
        }
    )
    assert not missing, missing


def _registered_env_ids() -> set[str]:
    import lmrl.envs

    return set(lmrl.envs.list_envs(kinds=lmrl.envs.ENV_KINDS))


def test_every_documented_env_id_is_registered_and_every_builtin_is_documented():
    documented: dict[str, str] = {}
    for doc in DOCS:
        for line in doc.read_text().splitlines():
            if "Did you mean" in line:  # an error message for a misspelt id, shown on purpose
                continue
            for env_id in re.findall(r"\blmrl/[A-Z]\w*-v\d+\b", line):
                documented.setdefault(env_id, doc.name)
    registered = _registered_env_ids()
    unknown = {env_id: doc for env_id, doc in documented.items() if env_id not in registered}
    assert not unknown, unknown
    undocumented = {e for e in registered if e.startswith("lmrl/")} - set(
        re.findall(r"`(lmrl/[^`]+)`", README)
    )
    assert not undocumented, undocumented


def test_ci_runs_the_readme_test_command_and_the_readme_installs_the_tested_torch():
    import torch

    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert "set -euo pipefail" in lines  # a failing step fails CI
    first_block = code_blocks(README, ("bash",))[0].splitlines()
    assert lines[-1] in first_block and lines[-1].endswith("pytest")
    pins = set(re.findall(r"torch==([\w.]+)", README))
    assert pins == {torch.__version__.split("+")[0]}, pins
