"""2-worker pretraining with Ray Train on a corpus our envs generate; a worker killed mid-run."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_run_config

from lmrl.pipelines.corpus import env_corpus
from lmrl.pipelines.lm_train.config import PretrainConfig
from lmrl.pipelines.lm_train.faults import FAULT_ENV
from lmrl.pipelines.lm_train.job import run_job
from lmrl.pipelines.lm_train.loop import latest_rows
from lmrl.pipelines.run_dir import read_rows

pytestmark = pytest.mark.slow

ENVS = ["lmrl/Maze-v0", "lmrl/GuessNumber-v0", "lmrl/CustomerSupport-v0"]
STEPS, EVERY = 24, 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "envs.txt"
    texts = env_corpus(ENVS, episodes=30, seed=0)
    path.write_text("\n".join(" ".join(t.split()) for t in texts) + "\n")
    return path


def _cfg(corpus, out) -> PretrainConfig:
    return PretrainConfig.model_validate({
        "data": {"train": [str(corpus)], "max_length": 64, "eval_fraction": 0.1},
        "tokenizer": {"vocab_size": 512},
        "model": {"preset": "tiny"},
        "training": {
            "steps": STEPS, "batch_size": 8, "lr": 3e-3, "warmup_steps": 4,
            "eval_every": EVERY, "checkpoint_every": EVERY,
        },
        "resources": {"num_workers": 2, "use_gpu": False, "max_failures": 2},
        "run": {"output_dir": str(out), "name": "pretrain", "progress": False},
    })  # fmt: skip


@pytest.fixture(scope="module")
def clean_run(ray_session, corpus, tmp_path_factory):
    return run_job(_cfg(corpus, tmp_path_factory.mktemp("clean")))


def test_two_workers_lower_the_held_out_perplexity(clean_run):
    summary = json.loads((clean_run / "summary.json").read_text())
    before, after = summary["eval_first"]["eval_ppl"], summary["eval_last"]["eval_ppl"]
    assert after < 0.5 * before, (before, after)
    train, ev = latest_rows(read_rows(clean_run / "metrics.jsonl"))
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))
    assert [r["step"] for r in ev] == [0, 8, 16, 24]
    assert summary["steps"] == STEPS and summary["attempts"] == 1
    lrs = [r["lr"] for r in train]
    assert lrs[0] < lrs[3] and lrs[3] > lrs[-1]  # warmup, then cosine decay
    assert all(r["tokens_per_s"] > 0 for r in train)
    # each step saw 2 workers x 8 sequences x 64 tokens
    assert train[-1]["tokens"] == STEPS * 2 * 8 * 64
    assert (clean_run / "loss_curve.png").is_file()


def test_outputs_load_with_transformers(clean_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = clean_run / "model"
    AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.eos_token_id is not None and tok.pad_token_id is not None
    meta = json.loads((model_dir / "lmrl.json").read_text())
    assert meta["format"] == "lmrl-model" and meta["task"] == "pretrain" and meta["steps"] == STEPS
    assert not (model_dir / "train_state.pt").exists()
    checkpoints = sorted(p.name for p in (clean_run / "train").glob("step_*"))
    assert checkpoints == ["step_000016", "step_000024"]  # keep_checkpoints: 2
    assert (clean_run / "train" / "step_000024" / "train_state.pt").is_file()


def test_a_killed_worker_resumes_from_the_last_checkpoint(ray_session, corpus, tmp_path, clean_run, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, f"1:12:{marker}")  # rank 1 exits hard after step 12, once
    run = run_job(_cfg(corpus, tmp_path))
    assert marker.read_text() == "rank 1 exited at step 12\n"
    rows = read_rows(run / "metrics.jsonl")
    first = [r["step"] for r in rows if r["attempt"] == 1 and "loss" in r]
    second = [r["step"] for r in rows if r["attempt"] == 2 and "loss" in r]
    assert first == list(range(1, 13))
    assert second == list(range(EVERY + 1, STEPS + 1))  # restarted from the step-8 checkpoint
    assert {r["resumed_from"] for r in rows if r["attempt"] == 2 and "loss" in r} == {EVERY}
    summary = json.loads((run / "summary.json").read_text())
    clean = json.loads((clean_run / "summary.json").read_text())
    assert summary["steps"] == clean["steps"] == STEPS
    assert summary["attempts"] == 2
    # weights, optimizer, schedule and data position all restored: the very same run
    assert summary["eval_last"]["eval_loss"] == pytest.approx(clean["eval_last"]["eval_loss"], rel=1e-5)


def test_the_pretrained_model_is_a_policy_for_lmrl_train(ray_session, clean_run, tmp_path):
    from lmrl.pipelines.rl.loop import train

    run = train(tiny_run_config(str(clean_run / "model"), str(tmp_path)))
    assert json.loads((run / "summary.json").read_text())["iterations"] == 1
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(run / "export")
