"""benchmarks/trl_compare.py's real-model variant: both sides get lmrl's recipe, prompt and parsing.

The comparison itself needs trl (the ``bench`` extra, not the ``test`` one); these tests check
what makes it fair without it: the settings both sides take from
``examples/arithmetic_smollm2.yaml``, the prompt text, the completion parsing behind the reward,
the median and range of the runs, and the arguments. The one test that builds TRL's config skips
without trl.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import trl_compare  # noqa: E402

from lmrl.envs.adapter import PROMPT_FORMAT, TextCodec  # noqa: E402
from lmrl.pipelines.policy_setup import adapter_config, resolve_auto  # noqa: E402
from lmrl.platform.config import load_config  # noqa: E402

RECIPE = ROOT / "examples" / "arithmetic_smollm2.yaml"
#: The keys the benchmark may set on the recipe: the run's own, and Ray's CPUs.
OVERRIDDEN = {("run", "output_dir"), ("run", "seed"), ("run", "progress"), ("run", "eval_episodes"),
              ("resources", "num_cpus")}  # fmt: skip


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe")
    cfg = trl_compare.recipe_config(out, 2)
    return cfg, trl_compare.recipe_settings(cfg)


def test_the_lmrl_side_runs_the_recipe_with_only_the_run_keys_changed(recipe, tmp_path) -> None:
    cfg, _ = recipe
    assert trl_compare.RECIPE == RECIPE
    as_trained = resolve_auto(load_config(RECIPE)).model_dump(by_alias=True)
    ours = cfg.model_dump(by_alias=True)
    changed = {(section, key) for section in ours for key in ours[section]
               if ours[section][key] != as_trained[section][key]}  # fmt: skip
    assert changed <= OVERRIDDEN, changed - OVERRIDDEN
    assert (cfg.run.seed, cfg.run.progress, cfg.run.eval_episodes) == (2, False, 0)
    assert cfg.policy.model == "smollm2-135m-instruct"
    assert cfg.policy.lora.enabled is True  # auto: on for a pretrained model


def test_both_sides_take_the_recipe_settings(recipe, tmp_path) -> None:
    cfg, s = recipe
    raw = yaml.safe_load(RECIPE.read_text())
    p, a = raw["policy"], raw["algorithm"]
    assert (s["model"], s["chat"]) == (p["model"], False)
    assert (s["env_id"], s["env_kwargs"]) == (raw["env"]["id"], raw["env"].get("kwargs", {}))
    args = trl_compare.trl_args(s, tmp_path, 5)
    assert args["learning_rate"] == a["lr"] == cfg.algorithm.lr
    assert args["temperature"] == p["temperature"] == cfg.policy.temperature
    assert args["max_completion_length"] == p["max_new_tokens"] == cfg.policy.max_new_tokens
    assert args["num_generations"] == a["group_size"] == cfg.algorithm.group_size
    assert args["per_device_train_batch_size"] == a["minibatch_size"]
    # One generation is one lmrl iteration: train_batch_size completions, in minibatches.
    assert (
        args["per_device_train_batch_size"] * args["steps_per_generation"] == a["train_batch_size"]
    )
    assert args["num_iterations"] == a["num_epochs"]
    assert args["beta"] == a["kl_ref_coeff"] > 0
    assert args["epsilon"] == cfg.algorithm.clip_param
    assert args["max_grad_norm"] == cfg.algorithm.grad_clip
    assert args["gradient_checkpointing"] is cfg.policy.gradient_checkpointing is False
    assert (args["top_k"], args["top_p"], args["seed"]) == (0, 1.0, 5)
    assert (args["use_cpu"], args["bf16"]) == (True, False)
    assert a["entropy_coeff"] == 0.0  # TRL's GRPO has no entropy bonus either


def test_the_tiny_comparison_keeps_its_trl_settings(tmp_path) -> None:
    assert trl_compare.trl_args(trl_compare.SETTINGS, tmp_path / "trl", 0) == {
        "output_dir": str(tmp_path / "trl"), "use_cpu": True, "bf16": False, "report_to": [],
        "learning_rate": 1e-3, "per_device_train_batch_size": 64, "num_generations": 8,
        "max_completion_length": 4, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "beta": 0.0,
        "num_iterations": 2, "steps_per_generation": 2, "logging_steps": 1, "save_strategy": "no",
        "max_steps": 100_000, "seed": 0, "disable_tqdm": True, "dataloader_num_workers": 0,
    }  # fmt: skip


def test_trl_gets_the_lora_adapter_lmrl_applies(recipe, tiny_model_dir) -> None:
    from peft import LoraConfig, get_peft_model

    from lmrl.policies.lm import load_lm
    from lmrl.policies.lora import LoraSettings, apply_lora, trainable_parameters

    _, s = recipe
    assert s["lora"] == {"r": 8, "alpha": 16.0, "target_modules": "all-linear"}  # recipe defaults
    # TRL's GRPOTrainer wraps the model with get_peft_model(model, peft_config).
    theirs = get_peft_model(
        load_lm(tiny_model_dir)[0], LoraConfig(**trl_compare.lora_config_args(s))
    )
    ours = apply_lora(load_lm(tiny_model_dir)[0], LoraSettings(**s["lora"]))
    fields = ("r", "lora_alpha", "target_modules", "lora_dropout", "bias", "use_rslora", "use_dora")
    for field in fields:
        assert getattr(theirs.peft_config["default"], field) == getattr(
            ours.peft_config["default"], field
        )
    assert theirs.peft_config["default"].lora_dropout == 0.0
    assert trainable_parameters(theirs) == trainable_parameters(ours) > 0


def _tokenizer_prompts_agree(tokenizer, cfg) -> None:
    import lmrl.envs

    fmt = trl_compare.recipe_prompt_format(cfg)
    codec = TextCodec(tokenizer, adapter_config(cfg))
    env = lmrl.envs.make(cfg.env.id, **cfg.env.kwargs)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        ids, mask = codec.encode_prompt(obs["text"])
        policy_ids = ids[mask > 0].tolist()
        # What TRL does with a plain-text prompt: processing_class(text=prompts)["input_ids"].
        trl_ids = tokenizer(text=[fmt.format(text=obs["text"])])["input_ids"][0]
        assert list(trl_ids) == policy_ids, obs["text"]


def test_trl_sees_the_prompt_the_lmrl_policy_sees(
    recipe, tiny_model_dir, smollm2_dir, tmp_path
) -> None:
    from transformers import AutoTokenizer

    cfg, _ = recipe
    assert trl_compare.recipe_prompt_format(cfg) == PROMPT_FORMAT
    assert adapter_config(cfg).chat_system is None  # plain prompt: policy.chat false
    _tokenizer_prompts_agree(AutoTokenizer.from_pretrained(smollm2_dir, padding_side="left"), cfg)
    tiny = trl_compare.recipe_config(tmp_path, 0, tiny_model_dir)
    _tokenizer_prompts_agree(
        AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left"), tiny
    )


def test_a_chat_recipe_is_refused(tmp_path) -> None:
    chat = resolve_auto(load_config(RECIPE, ["policy.chat=true"]))
    with pytest.raises(SystemExit, match="chat prompts"):
        trl_compare.recipe_prompt_format(chat)


def test_trl_completions_get_the_env_reward_of_lmrl_parsing(recipe, smollm2_dir) -> None:
    from transformers import AutoTokenizer

    import lmrl.envs

    cfg, _ = recipe
    tok = AutoTokenizer.from_pretrained(smollm2_dir, padding_side="left")
    eos = tok.eos_token_id
    env = lmrl.envs.make(cfg.env.id, **cfg.env.kwargs)
    seeds, ids, expected = [], [], []
    for seed in range(6):
        env.reset(seed=seed)
        right = str(env.unwrapped.answer)
        wrong = str(env.unwrapped.answer + 1)
        # Right then wrong after a newline: the env reads the last number (no cut at a newline).
        # Right, EOS, then wrong: what follows EOS is not part of the answer.
        for text, after_eos, reward_of in (
            (f" {right}\n{wrong}", "", wrong),
            (f" {right}", f" {wrong}", right),
        ):
            seeds.append(seed)
            ids.append(tok(text, add_special_tokens=False)["input_ids"] + [eos]
                       + tok(after_eos, add_special_tokens=False)["input_ids"])  # fmt: skip
            env.reset(seed=seed)
            expected.append(float(env.step(reward_of)[1]))
    # TRL keeps the ids up to the first EOS and decodes them without special tokens.
    trl_ids = [row[: row.index(eos) + 1] for row in ids]
    completions = tok.batch_decode(trl_ids, skip_special_tokens=True)
    mismatches: list[int] = []
    reward = trl_compare.recipe_reward(cfg, tok, mismatches)
    assert reward.__name__ == "env_reward"  # TRL logs rewards under the function's name
    assert reward(completions=completions, completion_ids=trl_ids, seed=seeds) == expected
    assert mismatches == [0]
    assert sorted(set(expected)) == [0.0, 1.0]
    # The reward reads lmrl's decoding of the ids, and counts where TRL's text differs from it.
    reward(completions=["x"] * len(ids), completion_ids=ids, seed=seeds)
    assert mismatches == [0, len(ids)]


def test_spread_is_the_median_and_range_of_the_runs() -> None:
    assert trl_compare.spread([30.0, 10.0, 20.0]) == {"median": 20.0, "min": 10.0, "max": 30.0,
                                                      "reached": 3, "runs": 3}  # fmt: skip
    # A run that never reached the target is slower than any that did.
    assert trl_compare.spread([12.0, None, 8.0]) == {"median": 12.0, "min": 8.0, "max": None,
                                                     "reached": 2, "runs": 3}  # fmt: skip
    assert trl_compare.spread([None, 5.0, None])["median"] is None
    assert trl_compare.spread([4.0, 6.0])["median"] == 5.0
    assert trl_compare.spread([])["median"] is None
    assert trl_compare._shown(trl_compare.spread([12.0, None, 8.0])) == "12 (8-not reached)"


def test_target_and_times_come_from_the_curves() -> None:
    side = {"setup_s": 2.0, "curve": [(2.5, 0.0), (5.0, 0.2), (7.5, 0.4), (10.0, 0.4)]}
    assert trl_compare.plateau(side) == 0.3333  # the points from t >= 5 s
    assert trl_compare.time_to(side, 0.25, window=2) == (7.5, 5.5)
    assert trl_compare.time_to(side, 0.9) == (None, None)


@pytest.mark.parametrize(
    ("argv", "budget", "runs", "name"),
    [
        ([], 150.0, None, "trl_compare"),
        (["--quick"], 20.0, None, "trl_compare"),
        (["--model", "smollm2-135m-instruct"], 300.0, 3, "trl_compare_smollm2"),
        (["--model", "smollm2-135m-instruct", "--quick"], 30.0, 1, "trl_compare_smollm2"),
        (
            ["--model", "smollm2-135m-instruct", "--budget", "45", "--runs", "5"],
            45.0,
            5,
            "trl_compare_smollm2",
        ),
        (["--model", "tiny-lora", "--quick", "--runs", "2"], 30.0, 2, "trl_compare_tiny_lora"),
    ],
)
def test_arguments_per_variant(argv, budget, runs, name) -> None:
    args = trl_compare.parse_args(argv)
    assert (args.budget, args.runs, args.benchmark) == (budget, runs, name)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs", "2"], "--runs applies to"),
        (["--model", "smollm2-135m-instruct", "--runs", "0"], "at least 1"),
        (["--model", "smollm2-135m-instruct", "--budget", "-1"], "must be positive"),
        (["--model", "smollm2"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        trl_compare.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_quick_real_model_run_keeps_off_its_full_result(tmp_path) -> None:
    (tmp_path / "trl_compare_smollm2.json").write_text(json.dumps({"quick": False}))
    with pytest.raises(SystemExit, match="trl_compare_smollm2.json holds a full run"):
        trl_compare.main(["--model", "smollm2-135m-instruct", "--quick", "--out", str(tmp_path)])


def test_trl_accepts_the_recipe_config(recipe, tmp_path) -> None:
    pytest.importorskip("trl", reason="trl is in the bench extra, not the test extra")
    from trl import GRPOConfig

    _, s = recipe
    config = GRPOConfig(**trl_compare.trl_args(s, tmp_path, 0))
    assert config.generation_batch_size == s["batch"]
    assert config.num_generations == s["group"]
    assert config.beta == s["beta"]
    assert config.gradient_checkpointing is False
    assert (
        config.loss_type == "dapo"
    )  # token-level averaging, as lmrl's token ratios (see the docstring)
    assert config.scale_rewards == "group"  # rewards standardised within the group, as lmrl's grpo
    assert np.isclose(config.learning_rate, s["lr"])


def test_trl_runs_without_the_deterministic_algorithms_rllib_switched_on(
    tiny_model_dir, tmp_path, monkeypatch
) -> None:
    pytest.importorskip("trl", reason="trl is in the bench extra, not the test extra")
    import torch

    seen = []

    def fake_train(lm, tokenizer, rows, config, reward, budget_s, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return [], 0.0

    monkeypatch.setattr(trl_compare, "_trl_train", fake_train)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # what RLlib's seeding leaves after an lmrl run
    try:
        trl_compare.trl_recipe_side(tmp_path, 1.0, 0, "trl-1", tiny_model_dir)
    finally:
        torch.use_deterministic_algorithms(before)
    assert seen == [False]
