"""Bad data and bad configs fail before anything is written, naming the file and the row.

No Ray here: the driver's validation pass (``prepare``) runs before Ray Train starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmrl.errors import ConfigError, DataError
from lmrl.pipelines.lm_train import data as D
from lmrl.pipelines.lm_train.config import FinetuneConfig, PretrainConfig
from lmrl.pipelines.lm_train.job import prepare, run_job
from lmrl.platform.config import load_config_as

WORDS = "the agent walks north then east to reach the goal in the maze".split()


def exactly(text: str) -> str:
    return "^" + re.escape(text) + "$"


def _lines(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=8)) for _ in range(n)]


def _pretrain_cfg(tmp_path, train, **data):
    return PretrainConfig.model_validate({
        "data": {"train": [str(p) for p in train], "max_length": 32, **data},
        "tokenizer": {"vocab_size": 300},
        "training": {"steps": 5, "batch_size": 2},
        "run": {"output_dir": str(tmp_path / "runs"), "name": "r", "progress": False},
    })  # fmt: skip


def _sft_cfg(tmp_path, train, **data):
    return FinetuneConfig.model_validate({
        "task": "sft",
        "data": {"train": [str(p) for p in train], "max_length": 24, **data},
        "tokenizer": {"vocab_size": 300},
        "training": {"steps": 5, "batch_size": 2},
        "run": {"output_dir": str(tmp_path / "runs"), "name": "r", "progress": False},
    })  # fmt: skip


def _pairs(n: int) -> dict[str, list]:
    lines = _lines(n)
    return {"prompt": [f"{line}\nAction:" for line in lines], "response": [" north"] * n}


def _write_parquet(path, columns: dict[str, list]):
    pq.write_table(pa.table(columns), path)
    return path


# --- the four bad-data cases of the issue, and nothing half-written ------------------------------


def test_empty_corpus_names_the_file_and_writes_nothing(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n\n   \n")
    cfg = _pretrain_cfg(tmp_path, [corpus])
    with pytest.raises(DataError, match=exactly(f"data.train: no rows with text in {corpus} (empty file); give a file with data")):
        run_job(cfg)
    assert not (tmp_path / "runs").exists()


def test_missing_column_names_the_file(tmp_path):
    path = _write_parquet(tmp_path / "demos.parquet", {"prompt": ["a\nAction:"] * 4, "answer": [" x"] * 4})
    cfg = _sft_cfg(tmp_path, [path])
    with pytest.raises(DataError, match=exactly(
        f"{path}: missing column `response` (columns: answer, prompt); sft needs prompt + response, or "
        "messages (set data.prompt_column / data.response_column / data.messages_column)"
    )):  # fmt: skip
        run_job(cfg)
    assert not (tmp_path / "runs").exists()


def test_missing_key_in_a_later_jsonl_row_names_the_line(tmp_path):
    path = tmp_path / "demos.jsonl"
    rows = [{"prompt": "a\nAction:", "response": " north"}] * 3 + [{"prompt": "b\nAction:"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=exactly(f"{path} line 4: no key `response` (keys: prompt)")):
        run_job(_sft_cfg(tmp_path, [path]))
    assert not (tmp_path / "runs").exists()


def test_text_longer_than_the_context_names_the_row(tmp_path):
    columns = _pairs(40)
    columns["response"][17] = " " + " ".join(WORDS * 3)
    path = _write_parquet(tmp_path / "demos.parquet", columns)
    with pytest.raises(DataError, match=r"^" + re.escape(f"{path} row 18: prompt + response is ") + r"\d+ tokens \(EOS included\), longer than data\.max_length \(24\); raise data\.max_length or shorten the row$"):
        run_job(_sft_cfg(tmp_path, [path]))
    assert not (tmp_path / "runs").exists()


def test_unpacked_pretraining_text_longer_than_the_context_names_the_line(tmp_path):
    lines = _lines(120)
    lines[6] = " ".join(WORDS * 4)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"^" + re.escape(f"{corpus} line 7: the text is ") + r"\d+ tokens"):
        run_job(_pretrain_cfg(tmp_path, [corpus], pack=False))
    # packed, the same corpus is fine: long documents are cut into blocks
    prepared = prepare(_pretrain_cfg(tmp_path, [corpus], pack=True, eval_fraction=0.3))
    assert prepared.summaries["train"]["rows"] == 120
    assert not (tmp_path / "runs").exists()


def test_malformed_parquet_names_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match=r"^" + re.escape(f"{path}: not a valid Parquet file (") + r".+\); rewrite it with pyarrow\.parquet\.write_table, or use \.jsonl$"):
        run_job(_sft_cfg(tmp_path, [path]))
    assert not (tmp_path / "runs").exists()


def test_truncated_parquet_names_the_file(tmp_path):
    good = _write_parquet(tmp_path / "good.parquet", _pairs(30))
    path = tmp_path / "cut.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match=re.escape(f"{path}: not a valid Parquet file")):
        run_job(_sft_cfg(tmp_path, [path]))


# --- more row problems ---------------------------------------------------------------------------


def test_invalid_json_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken\n')
    with pytest.raises(DataError, match=r"^" + re.escape(f"{path} line 2: not valid JSON (")):
        run_job(_pretrain_cfg(tmp_path, [path]))


def test_null_value_names_the_row(tmp_path):
    columns = _pairs(10)
    columns["prompt"][2] = None
    path = _write_parquet(tmp_path / "demos.parquet", columns)
    with pytest.raises(DataError, match=exactly(f"{path} row 3: `prompt` must be text, got null")):
        run_job(_sft_cfg(tmp_path, [path]))


def test_reward_labels_out_of_range(tmp_path):
    path = _write_parquet(tmp_path / "rm.parquet", {"response": _lines(6), "label": [0, 1, 0, 5, 1, 0]})
    cfg = _sft_cfg(tmp_path, [path]).model_copy(update={"task": "reward_model"})
    with pytest.raises(DataError, match=exactly(f"{path} row 4: `label` must be a number in [0, 1], got 5")):
        run_job(cfg)


def test_reward_data_needs_labels_or_pairs(tmp_path):
    path = _write_parquet(tmp_path / "rm.parquet", {"response": _lines(4)})
    cfg = _sft_cfg(tmp_path, [path]).model_copy(update={"task": "reward_model"})
    with pytest.raises(DataError, match=re.escape(f"{path}: reward_model data needs `response` + `label` or `chosen` + `rejected` columns, got response")):
        run_job(cfg)


def test_chat_rows_must_end_with_the_assistant(tmp_path):
    path = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=exactly(f"{path} line 2: the last message must be the assistant's (the response), got role 'user'")):
        run_job(_sft_cfg(tmp_path, [path]))


def test_too_little_data_for_the_workers(tmp_path):
    path = _write_parquet(tmp_path / "demos.parquet", _pairs(3))
    cfg = _sft_cfg(tmp_path, [path], eval_fraction=0.0)
    with pytest.raises(DataError, match=re.escape("3 training rows after holding out eval rows, fewer than resources.num_workers x training.batch_size (2 x 2)")):
        run_job(cfg)


def test_no_file_matches(tmp_path):
    cfg = _pretrain_cfg(tmp_path, [tmp_path / "nope.txt"])
    with pytest.raises(DataError, match=re.escape(f"data.train: no file matches `{tmp_path / 'nope.txt'}`")):
        run_job(cfg)


# --- rows -> tokens ------------------------------------------------------------------------------


def test_sft_labels_cover_only_the_response_and_eos(tmp_path):
    path = _write_parquet(tmp_path / "demos.parquet", _pairs(20))
    prepared = prepare(_sft_cfg(tmp_path, [path], eval_fraction=0.0))
    tok = prepared.tokenizer
    rows = [{"prompt": "the goal\nAction:", "response": " north"}]
    arrays, problems = D.encode_rows(prepared.spec, tok, rows)
    assert problems == [None]
    prompt = tok("the goal\nAction:", add_special_tokens=False)["input_ids"]
    response = tok(" north", add_special_tokens=False)["input_ids"]
    n = len(prompt) + len(response) + 1
    assert arrays["input_ids"][0, :n].tolist() == prompt + response + [tok.eos_token_id]
    labels = arrays["labels"][0]
    assert (labels[: len(prompt)] == D.IGNORE).all() and (labels[n:] == D.IGNORE).all()
    assert labels[len(prompt) : n].tolist() == response + [tok.eos_token_id]


def test_packing_joins_documents_with_eos(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_lines(30)) + "\n")
    prepared = prepare(_pretrain_cfg(tmp_path, [corpus], eval_fraction=0.0))
    arrays, _ = D.encode_rows(prepared.spec, prepared.tokenizer, [{"text": t} for t in _lines(30)])
    assert arrays["input_ids"].shape[1] == 32 and arrays["attention_mask"].all()
    assert (arrays["input_ids"] == prepared.tokenizer.eos_token_id).sum() >= 5


def test_held_out_split_is_deterministic_and_near_the_fraction():
    keys = [f"row {i}" for i in range(4000)]
    first = [D.in_eval(k, 0.1) for k in keys]
    assert first == [D.in_eval(k, 0.1) for k in keys]
    assert 0.08 < sum(first) / len(keys) < 0.12


# --- configs -------------------------------------------------------------------------------------


def test_config_errors_are_one_line(tmp_path):
    path = tmp_path / "pretrain.yaml"
    path.write_text("data:\n  train: corpus.txt\ntraining:\n  stepz: 10\n")
    with pytest.raises(ConfigError, match=exactly(f"unknown key `training.stepz` in {path}. Did you mean `training.steps`?")):
        load_config_as(PretrainConfig, path)
    with pytest.raises(ConfigError, match=exactly("model.preset must be one of tiny, small, got 'tinny'. Did you mean `tiny`? (in --set model.preset=tinny)")):
        load_config_as(PretrainConfig, None, ["model.preset=tinny"])
    with pytest.raises(ConfigError, match=exactly("resources.backend nccl needs GPUs, got resources.use_gpu false; use backend gloo (or auto) on CPU (in --set resources.backend=nccl)")):
        load_config_as(PretrainConfig, None, ["resources.backend=nccl"])
    with pytest.raises(ConfigError, match=r"^`task` must be one of 'sft', 'reward_model', got 'rm' \(str\) in --set task=rm$"):
        load_config_as(FinetuneConfig, None, ["task=rm"])
    cfg = load_config_as(PretrainConfig, None, ["data.train=corpus.txt"])
    assert cfg.data.train == ["corpus.txt"]


def test_model_too_short_for_the_context(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_lines(40)) + "\n")
    cfg = _pretrain_cfg(tmp_path, [corpus], max_length=1024)
    with pytest.raises(ConfigError, match=exactly("data.max_length (1024) is longer than the model can attend (512 positions); lower data.max_length to <= 512")):
        run_job(cfg)
    assert not (tmp_path / "runs").exists()


def test_cli_prints_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "corpus.txt").write_text("")
    (tmp_path / "pretrain.yaml").write_text("data:\n  train: corpus.txt\nrun:\n  name: r\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", "pretrain", "pretrain.yaml"],
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "error: data.train: no rows with text in corpus.txt (empty file); give a file with data\n"
    assert not (tmp_path / "runs").exists()


def test_shipped_train_examples_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "examples" / "train"
    loaded = {p.name: load_config_as(FinetuneConfig if "pretrain" not in p.name else PretrainConfig, p) for p in root.glob("*.yaml")}
    assert set(loaded) == {"pretrain_envs.yaml", "sft_maze.yaml", "reward_maze.yaml", "sft_chatterbot.yaml", "sft_tictactoe.yaml",
                           "sft_maze_smollm2.yaml", "sft_guess_number_smollm2.yaml", "sft_babyai_gotoobj_smollm2.yaml",
                           "sft_rg_arith_smollm2.yaml", "sft_tictactoe_smollm2.yaml", "sft_cookingworld_smollm2.yaml"}
    for name in sorted(n for n in loaded if n.endswith("_smollm2.yaml")):
        smollm2 = loaded[name]
        assert smollm2.model.init == "smollm2-135m-instruct" and smollm2.lora is not None
    assert loaded["sft_guess_number_smollm2.yaml"].data.eval  # its own held-out file: 16 distinct prompts in all
    # The demos' prompts run to 649 tokens (CookingWorld) and 327 (TicTacToe): max_length keeps them whole.
    assert loaded["sft_cookingworld_smollm2.yaml"].data.max_length >= 649
    assert loaded["sft_tictactoe_smollm2.yaml"].data.max_length >= 327
    assert loaded["reward_maze.yaml"].task == "reward_model" and loaded["sft_maze.yaml"].task == "sft"
    assert loaded["sft_tictactoe.yaml"].task == "sft" and loaded["sft_tictactoe.yaml"].training.steps == 1500


def test_docs_config_reference_sets_every_key_to_its_default():
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[3] / "docs" / "training.md").read_text()
    section = text[text.index("\n## Config reference\n") :]
    pretrain_block, finetune_block = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[:2]
    documented = yaml.safe_load(pretrain_block)
    assert PretrainConfig.model_validate(documented) == PretrainConfig()
    defaults = PretrainConfig().model_dump(mode="json")
    assert {k: set(v) for k, v in documented.items()} == {k: set(v) for k, v in defaults.items()}
    finetune = yaml.safe_load(finetune_block)
    fields = FinetuneConfig().model_dump(mode="json")
    assert finetune["task"] == fields["task"]
    assert finetune["lora"] == fields["lora"]
    assert set(finetune) == set(fields) - set(defaults) | {"data"}
    assert set(finetune["data"]) == set(fields["data"]) - set(defaults["data"])
    assert all(fields["data"][k] == v for k, v in finetune["data"].items())


def test_any_hf_causal_lm_config(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_lines(200)) + "\n")
    llama = {
        "model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 64,
    }  # fmt: skip
    cfg = PretrainConfig.model_validate({**_pretrain_cfg(tmp_path, [corpus]).model_dump(), "model": {"config": llama}})
    prepared = prepare(cfg)
    model = prepared.init_model
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(prepared.tokenizer)
    assert model.config.pad_token_id == prepared.tokenizer.pad_token_id
    bad = PretrainConfig.model_validate({**cfg.model_dump(), "model": {"config": {"hidden_size": 8}}})
    with pytest.raises(ConfigError, match=exactly("model.config needs a model_type (e.g. gpt2, llama), got keys ['hidden_size']")):
        prepare(bad)
    with pytest.raises(ConfigError, match=exactly("model.preset and model.init are both set; give one of model.preset, model.config or model.init (in --set model.preset=tiny and --set model.init=x)")):
        load_config_as(PretrainConfig, None, ["model.preset=tiny", "model.init=x"])


def test_chat_rows_from_the_chatterbot_corpus(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "examples" / "train" / "chatterbot_to_jsonl.py"
    spec = importlib.util.spec_from_file_location("chatterbot_to_jsonl", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(str(tmp_path))
    cfg = _sft_cfg(tmp_path, [tmp_path / "chatterbot_chat.jsonl"], max_length=512)
    cfg = FinetuneConfig.model_validate({**cfg.model_dump(), "tokenizer": {"vocab_size": 2048}})
    prepared = prepare(cfg)
    assert prepared.spec.columns == {"messages": "messages"}
    assert prepared.summaries["train"]["rows"] > 1000
    row = D.logical_rows(prepared.spec, {"messages": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]]})[0]
    assert row == {"prompt": "User: Hi\nAssistant:", "response": " Hello."}
    labels = [json.loads(line)["label"] for line in (tmp_path / "chatterbot_sentiment.jsonl").read_text().splitlines()]
    assert 0.2 < sum(labels) / len(labels) < 0.8  # VADER: both classes present
