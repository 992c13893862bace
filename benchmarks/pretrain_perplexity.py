"""2-worker pretraining on text lmrl's envs generate: held-out perplexity before and after.

Random play of three envs (``lmrl data collect --policy random``) gives the
corpus (the ``text`` column: the policy's prompt and the action). A tiny GPT-2
(BPE trained on the corpus) is pretrained with Ray Train, 2 CPU workers on
gloo; 5% of the rows (by a hash of their text) are held out. Results go to
``OUT/pretrain_perplexity.json``.

    python benchmarks/pretrain_perplexity.py --out runs/bench-pretrain --steps 300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ENVS = ("lmrl/Maze-v0", "lmrl/GuessNumber-v0", "lmrl/CustomerSupport-v0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/bench-pretrain")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--episodes", type=int, default=300)
    args = parser.parse_args()

    import ray

    from lmrl.pipelines.lm_train.collect import collect
    from lmrl.pipelines.lm_train.config import PretrainConfig
    from lmrl.pipelines.lm_train.job import run_job
    from lmrl.pipelines.lm_train.loop import latest_rows
    from lmrl.pipelines.run_dir import read_rows

    out = Path(args.out)
    files = []
    for i, env_id in enumerate(ENVS):
        path = out / "data" / f"{env_id.split('/')[-1]}.parquet"
        collect(env_id, "random", args.episodes, path, seed=1000 * i, progress=False)
        files.append(str(path))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    cfg = PretrainConfig.model_validate({
        "data": {"train": files, "text_column": "text", "max_length": 128, "eval_fraction": 0.05},
        "tokenizer": {"vocab_size": 512},
        "model": {"preset": "tiny"},
        "training": {"steps": args.steps, "batch_size": 16, "lr": 3e-3, "warmup_steps": 20,
                     "eval_every": 50, "checkpoint_every": 100},
        "resources": {"num_workers": 2},
        "run": {"output_dir": str(out), "name": f"pretrain-{time.strftime('%H%M%S')}", "progress": False},
    })  # fmt: skip
    started = time.perf_counter()
    run = run_job(cfg)
    wall = time.perf_counter() - started
    summary = json.loads((run / "summary.json").read_text())
    data = json.loads((run / "data.json").read_text())["summaries"]["train"]
    train, ev = latest_rows(read_rows(run / "metrics.jsonl"))
    result = {
        "corpus_rows": data["rows"],
        "corpus_tokens": data["tokens"],
        "held_out_rows": data["split_rows"]["eval"],
        "workers": 2,
        "steps": summary["steps"],
        "tokens_trained": summary["tokens"],
        "perplexity": [(r["step"], round(r["eval_ppl"], 2)) for r in ev],
        "perplexity_before": ev[0]["eval_ppl"],
        "perplexity_after": ev[-1]["eval_ppl"],
        "median_tokens_per_s": sorted(r["tokens_per_s"] for r in train)[len(train) // 2],
        "wall_seconds": round(wall, 1),
        "run_dir": str(run),
    }
    (out / "pretrain_perplexity.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
