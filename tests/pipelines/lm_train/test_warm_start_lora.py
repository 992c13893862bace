"""Warm start of a pretrained model: chat-format demos -> LoRA SFT -> a merged model RL starts from.

A tiny randomly initialised Llama whose tokenizer has a chat template stands in
for SmolLM2-135M-Instruct (lmrl treats it as a pretrained instruct model: chat
prompts, sum scoring, LoRA). The rows ``lmrl data collect --model`` writes must
tokenise, as ``lmrl finetune`` tokenises them, to exactly the ids the RL
adapter (``TokenizedEnv``) gives the policy: the prompt, then the action as
choose mode scores the candidate or generate mode samples it, EOS last.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import lmrl.envs
from lmrl.envs.adapter import TokenizedEnv
from lmrl.errors import ConfigError, RunError
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.lm_train import data as D
from lmrl.pipelines.lm_train.collect import collect
from lmrl.pipelines.lm_train.config import FinetuneConfig
from lmrl.pipelines.lm_train.job import prepare, run_job
from lmrl.pipelines.lm_train.rl_format import read_format
from lmrl.pipelines.policy_setup import adapter_config, is_pretrained
from lmrl.platform.config import load_config_as

CHAT_TEMPLATE = (
    "{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)
MAZE = "lmrl/Maze-v0"
#: The tiny BPE spends many tokens on the envs' system messages; RL's default 384 is for real models.
PROMPT_TOKENS = 1000
MAX_LENGTH = 1100


def exactly(text: str) -> str:
    return "^" + re.escape(text) + "$"


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    """A tiny Llama (random weights) with a BPE tokenizer trained offline and a chat template."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import disable_dropout, train_tokenizer

    path = tmp_path_factory.mktemp("chat_llama")
    envs = [MAZE, "lmrl/GuessNumber-v0", "lmrl/CustomerSupport-v0"]
    tok = train_tokenizer(env_corpus(envs, episodes=6), vocab_size=400)
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )  # fmt: skip
    disable_dropout(AutoModelForCausalLM.from_config(config)).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _run_config(model: str, env_id: str, mode: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "env": {"id": env_id},
            "policy": {"model": model, "action_mode": mode, "max_prompt_tokens": PROMPT_TOKENS},
        }
    )


def _rl_ids(cfg: RunConfig, tok, rows: list[dict]) -> list[tuple[list[int], list[int]]]:
    """Replays the rows' actions through RL's own adapter: (prompt ids, action ids) per step."""
    adapter = adapter_config(cfg)
    out = []
    for episode in sorted({r["episode_id"] for r in rows}):
        steps = [r for r in rows if r["episode_id"] == episode]
        env = TokenizedEnv(lmrl.envs.make(cfg.env.id), tok, adapter)
        enc, _ = env.reset(seed=steps[0]["seed"])
        for r in steps:
            if adapter.action_mode == "choose":  # the candidate slot the policy would pick
                action = r["admissible"].index(r["action"])
                ids = [int(t) for t in enc["cand_ids"][action][enc["cand_mask"][action] > 0]]
            else:  # the tokens the policy would sample, EOS last, padded as RLlib's action space is
                ids = env.codec.action_ids(
                    np.asarray(
                        tok(r["action"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                    ),
                    enc,
                )
                action = np.full(adapter.max_new_tokens, tok.pad_token_id, dtype=np.int64)
                action[: len(ids)] = ids
            out.append(([int(t) for t in enc["prompt_ids"][enc["prompt_mask"] > 0]], ids))
            enc, _, _, _, info = env.step(action)
            assert info["action_text"] == r["action"]  # the env got the row's action
    return out


@pytest.mark.parametrize(
    ("env_id", "mode"),
    [(MAZE, "choose"), ("lmrl/GuessNumber-v0", "generate"), ("lmrl/CustomerSupport-v0", "choose")],
    ids=["maze-choose", "guessnumber-generate", "customersupport-multiturn"],
)
def test_sft_rows_tokenise_to_the_ids_rl_scores_and_samples(chat_dir, tmp_path, env_id, mode):
    from transformers import AutoTokenizer

    cfg = _run_config(chat_dir, env_id, mode)
    out = tmp_path / "demos.parquet"
    collect(env_id, "expert", n=3, out=out, seed=7, progress=False, policy_config=cfg)
    rows = pq.read_table(out).to_pylist()
    tok = AutoTokenizer.from_pretrained(chat_dir)
    spec = D.Spec("sft", {"prompt": "prompt", "response": "response"}, MAX_LENGTH)
    arrays, problems = D.encode_rows(spec, tok, rows)  # exactly as lmrl finetune tokenises them
    assert problems == [None] * len(rows)
    expected = _rl_ids(cfg, tok, rows)
    assert len(expected) == len(rows) > 3
    for i, (prompt_ids, action_ids) in enumerate(expected):
        length = int(arrays["attention_mask"][i].sum())
        assert arrays["input_ids"][i][:length].tolist() == prompt_ids + action_ids
        labels = arrays["labels"][i][:length].tolist()
        assert (
            labels == [D.IGNORE] * len(prompt_ids) + action_ids
        )  # loss on the action and EOS only
        assert action_ids[-1] == tok.eos_token_id
    first = rows[0]
    assert first["prompt"].startswith("<|pad|>system\n") and first["prompt"].endswith(
        "<|pad|>assistant\n"
    )
    assert first["response"] == first["action"]  # a chat answer has no leading space
    if env_id == "lmrl/CustomerSupport-v0":  # multi-turn: the earlier turns are in the prompt
        second = rows[1]
        assert second["episode_id"] == first["episode_id"]
        assert first["response"] + "<|endoftext|>" in second["prompt"]
    meta = read_format(out)
    assert meta["env_id"] == env_id and meta["chat"] is True
    assert meta["adapter"] == adapter_config(cfg).to_dict()


def test_plain_rows_stay_the_plain_format(tmp_path):
    out = tmp_path / "plain.parquet"
    collect(MAZE, "expert", n=2, out=out, progress=False)
    first = pq.read_table(out).to_pylist()[0]
    assert (
        first["prompt"] == first["observation"] + "\nAction:"
        and first["response"] == " " + first["action"]
    )
    assert read_format(out) is None


@pytest.fixture(scope="module")
def chat_demos(chat_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("chat_demos") / "maze_chat.parquet"
    collect(
        MAZE,
        "expert",
        n=12,
        out=out,
        seed=20_000,
        progress=False,
        policy_config=_run_config(chat_dir, MAZE, "choose"),
    )
    return out


def _lora_cfg(demos, init, out, **lora) -> FinetuneConfig:
    return FinetuneConfig.model_validate(
        {
            "task": "sft",
            "data": {"train": [str(demos)], "max_length": MAX_LENGTH, "eval_fraction": 0.1},
            "model": {"init": str(init)},
            "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"], **lora},
            "training": {"steps": 6, "batch_size": 4, "lr": 3e-2, "warmup_steps": 1, "eval_every": 6,
                         "checkpoint_every": 6},
            "resources": {"num_workers": 1},
            "run": {"output_dir": str(out), "name": "sft-lora", "progress": False},
        }
    )  # fmt: skip


@pytest.mark.slow
def test_lora_sft_trains_only_the_adapter_and_writes_a_merged_model(
    ray_session, chat_dir, chat_demos, tmp_path
):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmrl.pipelines.evaluate import evaluate

    run = run_job(_lora_cfg(chat_demos, chat_dir, tmp_path))
    model_dir = run / "model"
    assert not (model_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(model_dir).state_dict()
    base = AutoModelForCausalLM.from_pretrained(chat_dir).state_dict()
    assert set(merged) == set(base)
    # The base was frozen: only the adapted layers moved, by exactly the adapter's scale * B @ A.
    (checkpoint,) = sorted(run.glob("train/**/step_000006"))
    adapter = load_file(checkpoint / "adapter_model.safetensors")
    changed = []
    for name, weight in base.items():
        if not torch.equal(merged[name], weight):
            changed.append(name)
            prefix = "base_model.model." + name.removesuffix(".weight")
            delta = (
                (8 / 4) * adapter[f"{prefix}.lora_B.weight"] @ adapter[f"{prefix}.lora_A.weight"]
            )
            torch.testing.assert_close(merged[name] - weight, delta, atol=1e-6, rtol=1e-4)
    assert changed and all(re.search(r"\.(q_proj|v_proj)\.weight$", n) for n in changed)
    assert len(changed) == 2 * 2  # two layers, q_proj and v_proj each
    # The tokenizer and its chat template come along, so RL sees a pretrained instruct model.
    assert AutoTokenizer.from_pretrained(model_dir).chat_template == CHAT_TEMPLATE
    cfg = RunConfig.model_validate({"env": {"id": MAZE}, "policy": {"model": str(model_dir)}})
    assert is_pretrained(cfg)
    meta = json.loads((model_dir / "lmrl.json").read_text())
    assert meta["lora"] == {
        "r": 4,
        "alpha": 8.0,
        "target_modules": ["q_proj", "v_proj"],
        "merged": True,
    }
    assert meta["adapter"] == read_format(chat_demos)["adapter"] and meta["env_id"] == MAZE
    # lmrl eval prompts the model as the rows were rendered.
    report = evaluate(
        str(model_dir),
        n=2,
        seed=1_000_000,
        out_dir=str(tmp_path / "eval"),
        transcripts=0,
        sampled=False,
    )
    assert report["env_id"] == MAZE


# --- bad input: one line, before anything is written ----------------------------------------


def test_lora_needs_pretrained_weights_and_task_sft():
    with pytest.raises(ConfigError, match=exactly(
        "lora trains an adapter on pretrained weights and needs model.init (a catalog name such as "
        "smollm2-135m-instruct, or a model directory), got model.preset tiny; set model.init or remove lora "
        "(in --set lora.r=4)"
    )):  # fmt: skip
        load_config_as(FinetuneConfig, None, ["lora.r=4"])
    with pytest.raises(ConfigError, match=exactly(
        "lora applies to task sft only, got task reward_model; remove lora (in --set task=reward_model and "
        "--set model.init=x and --set lora.r=4)"
    )):  # fmt: skip
        load_config_as(FinetuneConfig, None, ["task=reward_model", "model.init=x", "lora.r=4"])
    with pytest.raises(ConfigError, match="lora.target_modules is empty"):
        load_config_as(FinetuneConfig, None, ["model.init=x", "lora.target_modules=[]"])


def test_unknown_lora_target_names_what_the_model_has(chat_dir, chat_demos, tmp_path):
    cfg = _lora_cfg(chat_demos, chat_dir, tmp_path, target_modules=["q_prj"])
    with pytest.raises(ConfigError, match=exactly(
        f"lora.target_modules ['q_prj'] match no linear layer of model.init `{chat_dir}` (llama). Did you mean "
        "`q_proj`? It has: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj (or use all-linear)"
    )):  # fmt: skip
        run_job(cfg)
    assert not (tmp_path / "sft-lora").exists()


def test_chat_rows_need_the_tokenizer_they_were_rendered_for(
    chat_dir, chat_demos, tmp_path, tiny_model_dir
):
    with pytest.raises(ConfigError, match=exactly(
        f"{chat_demos} was rendered for the tokenizer of `{chat_dir}` (lmrl data collect --model), but the "
        f"BPE this run would train tokenises differently; set model.init to {chat_dir} or collect again with --model"
    )):  # fmt: skip
        prepare(
            FinetuneConfig.model_validate(
                {"data": {"train": [str(chat_demos)], "max_length": MAX_LENGTH}}
            )
        )
    other = _lora_cfg(chat_demos, tiny_model_dir, tmp_path)
    with pytest.raises(
        ConfigError, match=f"but model.init `{re.escape(tiny_model_dir)}` tokenises differently"
    ):
        prepare(FinetuneConfig.model_validate({**other.model_dump(), "lora": None}))


def test_collect_in_a_policy_format_rejects_what_rl_could_not_act_on(chat_dir, tmp_path):
    out = tmp_path / "x.parquet"
    with pytest.raises(RunError, match="policy.model `tiny` is a preset"):
        collect(
            MAZE,
            "expert",
            n=1,
            out=out,
            progress=False,
            policy_config=_run_config("tiny", MAZE, "choose"),
        )
    with pytest.raises(
        RunError,
        match=re.escape("env.id (lmrl/GuessNumber-v0) is not the env to collect (lmrl/Maze-v0)"),
    ):
        collect(
            MAZE,
            "expert",
            n=1,
            out=out,
            progress=False,
            policy_config=_run_config(chat_dir, "lmrl/GuessNumber-v0", "generate"),
        )
    tight = RunConfig.model_validate(
        {"env": {"id": "lmrl/GuessNumber-v0"},
         "policy": {"model": chat_dir, "action_mode": "generate", "max_prompt_tokens": PROMPT_TOKENS, "max_new_tokens": 1}}
    )  # fmt: skip
    with pytest.raises(
        RunError, match=r"more than policy.max_new_tokens \(1\) lets a generate-mode policy sample"
    ):
        collect("lmrl/GuessNumber-v0", "expert", n=1, out=out, progress=False, policy_config=tight)
    assert not out.exists()


def test_cli_collects_in_the_format_of_a_run_config(chat_dir, tmp_path):
    config = tmp_path / "rl.yaml"
    config.write_text(
        f"env:\n  id: {MAZE}\npolicy:\n  model: {chat_dir}\n  max_prompt_tokens: {PROMPT_TOKENS}\n"
    )
    cli = [sys.executable, "-m", "lmrl.platform.cli", "data", "collect"]
    env = {**os.environ, "COLUMNS": "200"}
    out = tmp_path / "like.parquet"
    proc = subprocess.run([*cli, MAZE, "--like", str(config), "-n", "2", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "prompts as `lmrl train` with policy.model" in proc.stdout
    assert read_format(out)["model"] == chat_dir
    proc = subprocess.run([*cli, "lmrl/GuessNumber-v0", "--like", str(config), "-n", "2", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"error: ENV_ID lmrl/GuessNumber-v0 is not env.id ({MAZE}) of {config}"
    )


def test_a_lora_checkpoint_restores_the_adapter_on_the_base(chat_dir, tmp_path):
    from lmrl.pipelines.lm_train.loop import load_model, restore_weights
    from lmrl.policies.lora import LoraSettings, apply_lora

    settings = LoraSettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    trained = apply_lora(load_model(chat_dir, "causal_lm", 0), settings)
    with torch.no_grad():  # as if trained: B moves off zero
        for name, p in trained.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    trained.save_pretrained(tmp_path)  # what a worker's checkpoint holds
    fresh = apply_lora(load_model(chat_dir, "causal_lm", 1), settings)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(fresh.state_dict().values(), trained.state_dict().values(), strict=True)
    )
    restore_weights(fresh, tmp_path)
    assert fresh.state_dict().keys() == trained.state_dict().keys()
    for name, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name
