"""Turn the English chatterbot-corpus (a PyPI package, offline) into chat rows for ``lmrl finetune``.

Each conversation [u1, b1, u2, b2, ...] becomes rows whose ``messages`` end at
each bot turn, so every bot reply is a response with the dialogue so far as
its prompt. A second file labels every line with VADER's sentiment (1 if the
compound score is positive, 0 if negative; neutral lines left out), for a
reward model with ``task: reward_model``.

    python examples/train/chatterbot_to_jsonl.py data/
    lmrl finetune examples/train/sft_chatterbot.yaml
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path


def conversations() -> list[list[str]]:
    """Every conversation of the English corpus, as lists of turns."""
    import chatterbot_corpus
    import yaml

    root = Path(os.path.dirname(chatterbot_corpus.__file__)) / "data" / "english"
    out = []
    for path in sorted(glob.glob(str(root / "*.yml"))):
        for conv in yaml.safe_load(Path(path).read_text(encoding="utf-8")).get("conversations", []):
            turns = [str(t) for t in conv if isinstance(t, str | int | float)]
            if len(turns) >= 2:
                out.append(turns)
    return out


def chat_rows(convs: list[list[str]]) -> list[dict]:
    """One row per bot turn: ``{"messages": [{role, content}, ...]}`` ending with that turn."""
    rows = []
    for turns in convs:
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
        rows += [{"messages": messages[: i + 1]} for i in range(1, len(messages), 2)]
    return rows


def sentiment_rows(convs: list[list[str]]) -> list[dict]:
    """``{"response", "label"}`` per distinct line with a clear VADER sentiment."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for line in sorted({t for turns in convs for t in turns}):
        compound = analyzer.polarity_scores(line)["compound"]
        if abs(compound) >= 0.3:
            rows.append({"response": line, "label": 1.0 if compound > 0 else 0.0})
    return rows


def main(out: str) -> None:
    convs = conversations()
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, rows in (("chatterbot_chat.jsonl", chat_rows(convs)), ("chatterbot_sentiment.jsonl", sentiment_rows(convs))):
        (Path(out) / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        print(f"{len(rows)} rows -> {Path(out) / name}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data")
