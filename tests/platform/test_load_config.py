"""YAML loading, ``--set`` overrides and their one-line error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmrl.errors import ConfigError
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.run_dir import config_to_yaml
from lmrl.platform.config import (
    apply_overrides,
    dump_config,
    load_config,
    parse_override,
    save_config,
    validate_config,
)


def exactly(message: str) -> str:
    """A ``match`` pattern for the whole message and nothing else."""
    return "^" + re.escape(message) + "$"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- what loads ------------------------------------------------------------------------------


def test_no_file_gives_defaults():
    assert load_config(None) == RunConfig()


def test_empty_file_and_empty_sections_give_defaults(tmp_path):
    assert load_config(write(tmp_path, "# only a comment\n")) == RunConfig()
    assert load_config(write(tmp_path, "algorithm:\nrun:\n  stop:\n")) == RunConfig()


def test_file_values_are_read(tmp_path):
    path = write(
        tmp_path,
        "env:\n  id: lmrl/GuessNumber-v0\n  kwargs: {high: 32}\n"
        "policy:\n  action_mode: generate\n"
        "algorithm:\n  lr: 3.0e-4\n  lambda: 0.9\n"
        "run:\n  stop:\n    iterations: 7\n",
    )
    cfg = load_config(path)
    assert cfg.env.id == "lmrl/GuessNumber-v0"
    assert cfg.env.kwargs == {"high": 32}
    assert cfg.policy.action_mode == "generate"
    assert cfg.algorithm.lr == pytest.approx(3e-4)
    assert cfg.algorithm.lambda_ == 0.9
    assert cfg.run.stop.iterations == 7


def test_overrides_parse_values_as_yaml():
    cfg = load_config(
        None,
        [
            "algorithm.lr=0.01",
            "run.stop.iterations=null",
            "algorithm.lambda=0.8",
            "run.progress=false",
            "resources.num_cpus=2",
            "env.kwargs={max_steps: 8}",
            "run.name=my run",
        ],
    )
    assert isinstance(cfg.algorithm.lr, float) and cfg.algorithm.lr == 0.01
    assert cfg.run.stop.iterations is None
    assert cfg.algorithm.lambda_ == 0.8
    assert cfg.run.progress is False
    assert cfg.resources.num_cpus == 2
    assert cfg.env.kwargs == {"max_steps": 8}
    assert cfg.run.name == "my run"


def test_overrides_apply_after_the_file_in_order(tmp_path):
    path = write(tmp_path, "algorithm:\n  lr: 0.5\n  gamma: 0.9\n")
    cfg = load_config(path, ["algorithm.lr=0.1", "algorithm.lr=0.2"])
    assert cfg.algorithm.lr == 0.2
    assert cfg.algorithm.gamma == 0.9


def test_override_into_a_nested_dict():
    cfg = load_config(None, ["env.kwargs={max_steps: 8}", "env.kwargs.min_distance=2"])
    assert cfg.env.kwargs == {"max_steps": 8, "min_distance": 2}


def test_override_text_that_is_not_yaml_is_a_string():
    assert load_config(None, ["run.name=[oops"]).run.name == "[oops"


def test_override_of_a_text_field_keeps_the_text():
    cfg = load_config(None, ["run.name=2024", "env.id=5", "policy.model=1.0"])
    assert (cfg.run.name, cfg.env.id, cfg.policy.model) == ("2024", "5", "1.0")


def test_number_for_a_text_field_in_a_file_says_to_quote_it(tmp_path):
    path = write(tmp_path, "run:\n  name: 2024\n")
    with pytest.raises(
        ConfigError,
        match=exactly(f"`run.name` must be a string, got 2024 (int) in {path}; quote it: '2024'"),
    ):
        load_config(path)


def test_parse_override():
    assert parse_override("algorithm.lr=0.01") == (("algorithm", "lr"), 0.01)
    assert parse_override("run.stop.iterations=null") == (("run", "stop", "iterations"), None)
    assert parse_override("env.id=lmrl/Maze-v0") == (("env", "id"), "lmrl/Maze-v0")
    assert parse_override("run.name=a=b") == (("run", "name"), "a=b")


def test_apply_overrides_in_place():
    data = {"algorithm": {"lr": 1}}
    assert apply_overrides(data, ["algorithm.gamma=0.5", "run.seed=3"]) is data
    assert data == {"algorithm": {"lr": 1, "gamma": 0.5}, "run": {"seed": 3}}


def test_dump_load_round_trip(tmp_path):
    cfg = load_config(
        None,
        [
            "env.id=lmrl/GuessNumber-v0",
            "env.kwargs={high: 32, low: 1}",
            "policy.action_mode=generate",
            "algorithm.lambda=0.9",
            "algorithm.grad_clip=null",
            "resources.address=auto",
            "run.stop.time_s=30.5",
            "run.name=x",
        ],
    )
    text = dump_config(cfg)
    assert "lambda: 0.9" in text and "lambda_" not in text
    assert load_config(write(tmp_path, text)) == cfg
    assert load_config(save_config(cfg, tmp_path / "run" / "config.yaml")) == cfg
    assert load_config(write(tmp_path, dump_config(RunConfig()))) == RunConfig()


def test_lmrl_config_writes_what_a_run_directory_holds_under_a_header(tmp_path):
    """One dumper: ``dump_config`` is ``config_to_yaml`` (a run's ``config.yaml``) plus a comment."""
    cfg = load_config(None, ["env.kwargs={name: café}"])
    text = dump_config(cfg)
    header = "# lmrl run config: `lmrl train config.yaml [--set key=value ...]`\n"
    assert text == header + config_to_yaml(cfg)
    assert "name: café" in text  # text as it is, not escaped
    assert load_config(save_config(cfg, tmp_path / "config.yaml")) == cfg


def test_validate_config_from_a_dict():
    assert validate_config({"algorithm": {"lr": 0.5}}).algorithm.lr == 0.5
    with pytest.raises(ConfigError, match=exactly("`algorithm.lr` must be > 0, got 0 in my dict")):
        validate_config({"algorithm": {"lr": 0}}, source="my dict")


# --- file errors -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(
        ConfigError,
        match=exactly(
            f"config file not found: {path}; pass the path of a YAML run config "
            "(`lmrl config > config.yaml` writes the defaults)"
        ),
    ):
        load_config(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(
        ConfigError,
        match=exactly(
            f"config path {tmp_path} is a directory; pass a YAML file such as {tmp_path}/config.yaml"
        ),
    ):
        load_config(str(tmp_path))


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "algorithm:\n  lr: 0.1\n   gamma: 3\n")
    with pytest.raises(
        ConfigError,
        match=exactly(
            f"{path}: YAML syntax error at line 3, column 9: mapping values are not allowed here"
        ),
    ):
        load_config(path)


def test_yaml_tab_error(tmp_path):
    path = write(tmp_path, "algorithm:\n\tlr: 0.1\n")
    with pytest.raises(
        ConfigError,
        match=exactly(
            f"{path}: YAML syntax error at line 2, column 1: found character '\\t' that cannot start any token"
        ),
    ):
        load_config(path)


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path, "- env\n- policy\n")
    with pytest.raises(
        ConfigError,
        match=exactly(
            f"{path}: the top level must be a mapping of sections "
            "(env, policy, algorithm, resources, run, reward, policies, policy_mapping, warm_start), got ['env', 'policy'] (list)"
        ),
    ):
        load_config(path)


# --- unknown keys ----------------------------------------------------------------------------


def test_unknown_key_did_you_mean(tmp_path):
    path = write(tmp_path, "algorithm:\n  lrr: 0.1\n")
    with pytest.raises(
        ConfigError,
        match=exactly(f"unknown key `algorithm.lrr` in {path}. Did you mean `algorithm.lr`?"),
    ):
        load_config(path)


def test_unknown_section_did_you_mean(tmp_path):
    path = write(tmp_path, "algo:\n  lr: 0.1\n")
    with pytest.raises(
        ConfigError, match=exactly(f"unknown key `algo` in {path}. Did you mean `algorithm`?")
    ):
        load_config(path)


def test_unknown_key_uses_the_yaml_alias():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "unknown key `algorithm.lambd` in --set algorithm.lambd=0.9. Did you mean `algorithm.lambda`?"
        ),
    ):
        load_config(None, ["algorithm.lambd=0.9"])


def test_unknown_nested_key_prefix_suggestion():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "unknown key `run.stop.iter` in --set run.stop.iter=3. Did you mean `run.stop.iterations`?"
        ),
    ):
        load_config(None, ["run.stop.iter=3"])


def test_key_in_the_wrong_section_points_to_the_right_one():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "unknown key `algorithm.seed` in --set algorithm.seed=1. Did you mean `run.seed`?"
        ),
    ):
        load_config(None, ["algorithm.seed=1"])


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "unknown key `run.stop.foo` in --set run.stop.foo=1. "
            "Valid keys in `run.stop`: iterations, timesteps, time_s, success_rate."
        ),
    ):
        load_config(None, ["run.stop.foo=1"])
    with pytest.raises(
        ConfigError,
        match=exactly(
            "unknown key `zzz` in --set zzz=1. Valid keys at the top level: env, policy, algorithm, resources, run, reward, policies, policy_mapping, warm_start."
        ),
    ):
        load_config(None, ["zzz=1"])


# --- wrong types and ranges ------------------------------------------------------------------


def test_wrong_type_in_file(tmp_path):
    path = write(tmp_path, "algorithm:\n  lr: fast\n")
    with pytest.raises(
        ConfigError, match=exactly(f"`algorithm.lr` must be a number, got 'fast' (str) in {path}")
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "algorithm.lr=fast",
            "`algorithm.lr` must be a number, got 'fast' (str) in --set algorithm.lr=fast",
        ),
        (
            "algorithm.lr=null",
            "`algorithm.lr` must be a number, got null in --set algorithm.lr=null",
        ),
        (
            "algorithm.train_batch_size=2.5",
            "`algorithm.train_batch_size` must be an integer, got 2.5 (float) in --set algorithm.train_batch_size=2.5",
        ),
        (
            "run.stop.iterations=many",
            "`run.stop.iterations` must be an integer, got 'many' (str) in --set run.stop.iterations=many",
        ),
        (
            "run.progress=maybe",
            "`run.progress` must be true or false, got 'maybe' (str) in --set run.progress=maybe",
        ),
        (
            "run.name=[1, 2]",
            "`run.name` must be a string, got [1, 2] (list) in --set run.name=[1, 2]",
        ),
        (
            "policy.temperature=true",
            "`policy.temperature` must be a number, got True (bool) in --set policy.temperature=true",
        ),
        (
            "policy.max_new_tokens=true",
            "`policy.max_new_tokens` must be an integer, got True (bool) in --set policy.max_new_tokens=true",
        ),
        (
            "env.kwargs=[1]",
            "`env.kwargs` must be a mapping, got [1] (list) in --set env.kwargs=[1]",
        ),
        ("algorithm=5", "`algorithm` must be a mapping, got 5 (int) in --set algorithm=5"),
    ],
)
def test_wrong_type_in_override(override, message):
    with pytest.raises(ConfigError, match=exactly(message)):
        load_config(None, [override])


def test_literal_choice_did_you_mean():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "`policy.action_mode` must be one of 'choose', 'generate', got 'chose' (str) "
            "in --set policy.action_mode=chose. Did you mean `choose`?"
        ),
    ):
        load_config(None, ["policy.action_mode=chose"])


def test_out_of_range_in_file(tmp_path):
    path = write(tmp_path, "algorithm:\n  gamma: 1.5\n")
    with pytest.raises(
        ConfigError, match=exactly(f"`algorithm.gamma` must be <= 1, got 1.5 in {path}")
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algorithm.lr=0", "`algorithm.lr` must be > 0, got 0 in --set algorithm.lr=0"),
        (
            "algorithm.lambda=-0.1",
            "`algorithm.lambda` must be >= 0, got -0.1 in --set algorithm.lambda=-0.1",
        ),
        (
            "resources.num_cpus=0",
            "`resources.num_cpus` must be >= 1, got 0 in --set resources.num_cpus=0",
        ),
        (
            "run.stop.success_rate=2",
            "`run.stop.success_rate` must be <= 1, got 2 in --set run.stop.success_rate=2",
        ),
    ],
)
def test_out_of_range_in_override(override, message):
    with pytest.raises(ConfigError, match=exactly(message)):
        load_config(None, [override])


def test_more_problems_are_counted():
    with pytest.raises(
        ConfigError,
        match=exactly(
            "`algorithm.lr` must be > 0, got -1 in --set algorithm.lr=-1 (and 1 more problem)"
        ),
    ):
        load_config(None, ["algorithm.lr=-1", "algorithm.gamma=2"])


# --- cross-field checks keep the model's message, with the source ----------------------------

_BATCH = (
    "algorithm.minibatch_size ({mb}) must be <= algorithm.train_batch_size ({tb}); "
    "lower minibatch_size or raise train_batch_size"
)


def test_cross_field_error_from_file(tmp_path):
    path = write(tmp_path, "algorithm:\n  minibatch_size: 600\n")
    with pytest.raises(ConfigError, match=exactly(_BATCH.format(mb=600, tb=512) + f" (in {path})")):
        load_config(path)


def test_cross_field_error_from_override():
    with pytest.raises(
        ConfigError,
        match=exactly(_BATCH.format(mb=600, tb=512) + " (in --set algorithm.minibatch_size=600)"),
    ):
        load_config(None, ["algorithm.minibatch_size=600"])


def test_cross_field_error_from_file_and_override(tmp_path):
    path = write(tmp_path, "algorithm:\n  train_batch_size: 100\n")
    with pytest.raises(
        ConfigError,
        match=exactly(
            _BATCH.format(mb=200, tb=100) + f" (in {path} and --set algorithm.minibatch_size=200)"
        ),
    ):
        load_config(path, ["algorithm.minibatch_size=200"])


# --- malformed overrides ---------------------------------------------------------------------


@pytest.mark.parametrize("override", ["algorithm.lr", "=0.1", "algorithm..lr=1", "algorithm.=1"])
def test_malformed_override(override):
    with pytest.raises(
        ConfigError,
        match=exactly(f"--set expects key=value, got {override!r}; e.g. --set algorithm.lr=0.01"),
    ):
        load_config(None, [override])


def test_override_into_a_value_that_is_not_a_section(tmp_path):
    path = write(tmp_path, "algorithm:\n  lr: 0.1\n")
    with pytest.raises(
        ConfigError,
        match=exactly(
            "cannot apply --set algorithm.lr.x=1: `algorithm.lr` is 0.1 (float), not a section; "
            "set `algorithm.lr=...` instead"
        ),
    ):
        load_config(path, ["algorithm.lr.x=1"])


def test_every_message_is_one_line(tmp_path):
    bad = [
        (write(tmp_path, "a: [1\n", "a.yaml"), []),
        (write(tmp_path, "algorithm:\n  lr: '\n\n  x'\n", "b.yaml"), []),
        (None, ["run.name={a: 1}"]),
    ]
    for path, overrides in bad:
        with pytest.raises(ConfigError) as info:
            load_config(path, overrides)
        assert "\n" not in str(info.value)


def test_missing_file_hint_fits_the_command(tmp_path):
    from lmrl.pipelines.lm_train.config import FinetuneConfig
    from lmrl.platform.config import load_config_as

    with pytest.raises(ConfigError, match=r"not found: .*lmrl config > config.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"not found: .*examples/train/") as info:
        load_config_as(FinetuneConfig, tmp_path / "nope.yaml")
    assert "lmrl config" not in str(info.value)


def test_advantage_estimator_choices_and_algorithm():
    assert load_config(None, ["algorithm.advantage_estimator=reinforce++"]).algorithm.advantage_estimator == "reinforce++"
    with pytest.raises(ConfigError, match="must be one of 'gae', 'reinforce\\+\\+', 'grpo', got 'vtrace'"):
        load_config(None, ["algorithm.advantage_estimator=vtrace"])
    with pytest.raises(
        ConfigError,
        match=exactly(
            "algorithm.advantage_estimator 'reinforce++' is supported with PPO only, got algorithm.name DQN; "
            "remove algorithm.advantage_estimator or use PPO "
            "(in --set algorithm.name=DQN and --set algorithm.advantage_estimator=reinforce++)"
        ),
    ):
        load_config(None, ["algorithm.name=DQN", "algorithm.advantage_estimator=reinforce++"])


def test_grpo_group_size_must_divide_the_envs_per_runner():
    cfg = load_config(None, ["algorithm.advantage_estimator=grpo", "algorithm.group_size=4"])
    assert cfg.algorithm.group_size == 4 and cfg.resources.num_envs_per_env_runner == 8
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "algorithm.group_size (3) must divide resources.num_envs_per_env_runner (8): each env runner "
            "samples whole groups; e.g. set num_envs_per_env_runner to 9"
        ),
    ):
        load_config(None, ["algorithm.advantage_estimator=grpo", "algorithm.group_size=3"])
