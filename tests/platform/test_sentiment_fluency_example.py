"""``examples/sentiment_fluency.py``: plays every SentimentSteer prompt once and scores the text."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "sentiment_fluency.py"


def _load():
    spec = importlib.util.spec_from_file_location("sentiment_fluency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fluency_covers_every_prompt_and_counts_repeats(tiny_model_dir, tmp_path, capsys):
    import lmrl.envs
    from lmrl.envs.adapter import AdapterConfig
    from lmrl.pipelines.export import export_policy
    from lmrl.policies.lm import load_lm

    lm, _ = load_lm(tiny_model_dir)
    out = export_policy(
        {f"lm.{k}": v for k, v in lm.state_dict().items()}, tiny_model_dir, tmp_path / "policy",
        env_id="lmrl/SentimentSteer-v0", adapter=AdapterConfig(action_mode="generate"),
    )  # fmt: skip
    module = _load()
    assert module.main([str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip())
    assert report["prompts"] == len(lmrl.envs.make("lmrl/SentimentSteer-v0").unwrapped.prompts)
    assert -1.0 <= report["mean_sentiment"] <= 1.0
    assert 0.0 <= report["share_repeating_a_word_3x"] <= 1.0 and 0.0 < report["distinct_word_ratio"] <= 1.0
    assert len(report["examples"]) == 4
