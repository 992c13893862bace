"""Pretraining throughput: ``lmrl pretrain`` (Ray Train, 1 and 2 workers) against a bare PyTorch loop.

The lmrl side is :func:`lmrl.pipelines.lm_train.job.run_job`: env text
read and packed by Ray Data, DDP over gloo, ``train_loop_per_worker`` with
its AdamW, schedule, clipping and per-step metrics. Its tokens/s is the
median of the per-step figures in ``metrics.jsonl`` (steady state: no
evaluation or checkpoint inside the timed steps).

The baseline is a single process, no Ray: the same initial weights (the
run's ``init/``), the same loss function (:func:`lmrl.pipelines.lm_train.loop._loss`),
optimiser groups, batch shape and torch threads, on in-memory token blocks.
It runs before and after the Ray runs; their mean is the baseline.

Model FLOPs utilisation: model FLOPs per token ``6 N + 12 L T d`` (forward
and backward, PaLM's appendix B; N counts the weights without position
embeddings) times tokens/s, over a torch fp32 matmul peak measured here with
the same threads (2 workers: twice the one-thread peak). With a GPU the
bare loop and a 1-worker run also go in bf16 against a bf16 matmul peak.

    python benchmarks/pretrain_throughput.py            # full
    python benchmarks/pretrain_throughput.py --quick    # seconds (plus Ray start-up)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET = 0.95
FULL = {"model": {"model_type": "gpt2", "n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 128},
        "batch": 16, "length": 128, "steps": 60, "skip": 5}  # fmt: skip
QUICK = {"model": {"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 32},
         "batch": 4, "length": 32, "steps": 12, "skip": 3}  # fmt: skip


def matmul_peak(
    threads: int, device: str = "cpu", dtype: str = "float32", size: int = 1024
) -> float:
    """Best FLOP/s of an ``size`` x ``size`` matmul over a few tries (the machine's practical limit)."""
    import torch

    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    a = torch.randn(size, size, device=device).to(dt)
    b = torch.randn(size, size, device=device).to(dt)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    best = 0.0
    reps = 50 if device == "cuda" else 5
    for _ in range(7):
        sync()
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = max(best, reps * 2 * size**3 / (time.perf_counter() - start))
    return best


def flops_per_token(config: dict[str, Any], params_no_pos: int, length: int) -> float:
    """Training FLOPs per token: 6 N + 12 L T d (forward + backward)."""
    return 6 * params_no_pos + 12 * config["n_layer"] * length * config["n_embd"]


def corpus(work: Path, rows: int) -> Path:
    """A text file of env observations and actions (one document per line)."""
    path = work / "pretrain_corpus.txt"
    if not path.is_file() or len(path.read_text().splitlines()) < rows:
        import lmrl.envs
        from lmrl.pipelines.corpus import env_corpus

        texts = [
            t.replace("\n", " ")
            for t in env_corpus([e for e in lmrl.envs.list_envs() if e.startswith("lmrl/")], episodes=40)
            if t.strip()
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join((texts * (1 + rows // max(1, len(texts))))[:rows]) + "\n")
    return path


def ray_train(
    work: Path, text: Path, size: dict, workers: int, threads: int, gpu: bool = False
) -> dict[str, Any]:
    """One ``pretrain`` run; its steady-state tokens/s and the run directory."""
    from lmrl.pipelines.lm_train.config import PretrainConfig
    from lmrl.pipelines.lm_train.job import run_job
    from lmrl.pipelines.lm_train.loop import latest_rows
    from lmrl.pipelines.run_dir import read_rows

    name = f"ray-{workers}w{'-gpu' if gpu else ''}-{time.strftime('%H%M%S')}"
    cfg = PretrainConfig.model_validate({
        "data": {"train": [str(text)], "max_length": size["length"], "eval_fraction": 0.0, "shuffle_buffer": 0},
        "tokenizer": {"vocab_size": 512},
        "model": {"config": size["model"]},
        "training": {"steps": size["steps"], "batch_size": size["batch"], "lr": 1e-3, "warmup_steps": 2,
                     "eval_every": size["steps"], "checkpoint_every": size["steps"],
                     "dtype": "bfloat16" if gpu else "float32"},
        "resources": {"num_workers": workers, "use_gpu": gpu, "cpus_per_worker": float(threads) if not gpu else None},
        "run": {"output_dir": str(work / "pretrain"), "name": name, "progress": False},
    })  # fmt: skip
    started = time.perf_counter()
    run = run_job(cfg)
    wall = time.perf_counter() - started
    train, _ = latest_rows(read_rows(run / "metrics.jsonl"))
    steady = [r["tokens_per_s"] for r in train[size["skip"] :]]
    return {
        "workers": workers,
        "tokens_per_s": round(statistics.median(steady), 1),
        "steps_timed": len(steady),
        "wall_seconds_with_startup": round(wall, 1),
        "run_dir": str(run),
        "init_dir": str(run / "init"),
    }


def bare_loop(
    init_dir: str, size: dict, threads: int, device: str = "cpu", bf16: bool = False
) -> dict[str, Any]:
    """The same model, loss, optimiser and batch shape in one process, no Ray, no DDP."""
    import torch

    from lmrl.pipelines.lm_train.loop import _loss, _param_groups, load_model

    torch.set_num_threads(threads)
    model = load_model(init_dir, "causal_lm", 0).to(device)
    model.train()
    opt = torch.optim.AdamW(_param_groups(model, 0.01), lr=1e-3, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    b, length = size["batch"], size["length"]
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rates = []
    for step in range(size["steps"]):
        ids = torch.randint(vocab, (b, length), generator=gen)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast:
            loss, _, _, _ = _loss(model, batch, "causal")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if step >= size["skip"]:
            rates.append(b * length / (time.perf_counter() - start))
    params = sum(p.numel() for n, p in model.named_parameters() if "wpe" not in n)
    return {
        "tokens_per_s": round(statistics.median(rates), 1),
        "params_no_pos": params,
        "steps_timed": len(rates),
    }


def main(argv: list[str] | None = None) -> None:
    p = common.parser("pretrain_throughput", __doc__)
    p.add_argument(
        "--materialize-data",
        action="store_true",
        help="experiment: tokenize and pack the data once, before training (Dataset.materialize), "
        "so no Ray Data tasks run during the timed steps -- the fix BENCHMARKS.md proposes",
    )
    args = p.parse_args(argv)
    started = common.setup(args)
    if args.materialize_data:
        import lmrl.pipelines.lm_train.job as job

        build = job._datasets
        job._datasets = lambda *a, **k: {n: d.materialize() for n, d in build(*a, **k).items()}
    import ray
    import torch

    size = QUICK if args.quick else FULL
    work = Path(args.work)
    text = corpus(work, 400 if args.quick else 4000)
    threads = args.threads
    peak1 = matmul_peak(threads)
    peak2 = matmul_peak(2 * threads) if not args.quick else None
    torch.set_num_threads(threads)
    ray.init(
        num_cpus=3, include_dashboard=False, log_to_driver=False
    )  # 2 workers + a CPU for Ray Data
    ray1 = ray_train(work, text, size, 1, threads)
    bare_before = bare_loop(ray1["init_dir"], size, threads)
    ray2 = ray_train(work, text, size, 2, threads)
    bare_after = bare_loop(ray1["init_dir"], size, threads)
    bare_rate = round((bare_before["tokens_per_s"] + bare_after["tokens_per_s"]) / 2, 1)
    fpt = flops_per_token(size["model"], bare_before["params_no_pos"], size["length"])

    def mfu(rate: float, peak: float) -> float:
        return round(rate * fpt / peak, 4)

    rows = [
        ["bare loop (1 process)", threads, bare_rate, 1.0, round(bare_rate * fpt / 1e9, 2), mfu(bare_rate, peak1)],
        ["lmrl pretrain, Ray Train 1 worker", threads, ray1["tokens_per_s"], common.ratio(ray1["tokens_per_s"], bare_rate),
         round(ray1["tokens_per_s"] * fpt / 1e9, 2), mfu(ray1["tokens_per_s"], peak1)],
        ["lmrl pretrain, Ray Train 2 workers", f"{threads} each", ray2["tokens_per_s"],
         common.ratio(ray2["tokens_per_s"], bare_rate), round(ray2["tokens_per_s"] * fpt / 1e9, 2),
         mfu(ray2["tokens_per_s"], 2 * peak1)],
    ]  # fmt: skip
    gpu: dict[str, Any] | None = None
    if torch.cuda.is_available():
        peak_bf16 = matmul_peak(threads, "cuda", "bfloat16", 8192)
        bare_gpu = bare_loop(ray1["init_dir"], size, threads, "cuda", bf16=True)
        ray_gpu = ray_train(work, text, size, 1, threads, gpu=True)
        gpu = {"matmul_peak_bf16_flops": peak_bf16, "bare_bf16": bare_gpu, "ray_train_1_worker_bf16": ray_gpu,
               "ratio": common.ratio(ray_gpu["tokens_per_s"], bare_gpu["tokens_per_s"]),
               "mfu_bare": mfu(bare_gpu["tokens_per_s"], peak_bf16), "mfu_ray": mfu(ray_gpu["tokens_per_s"], peak_bf16)}  # fmt: skip
        rows.append(
            ["bare loop, cuda bf16", "-", bare_gpu["tokens_per_s"], 1.0, None, gpu["mfu_bare"]]
        )
        rows.append(
            [
                "Ray Train 1 worker, cuda bf16",
                "-",
                ray_gpu["tokens_per_s"],
                gpu["ratio"],
                None,
                gpu["mfu_ray"],
            ]
        )
    ray.shutdown()
    m = size["model"]
    common.report(
        "pretrain_throughput",
        args,
        title=("[data materialized] " if args.materialize_data else "")
        + f"Pretraining tokens/s: GPT-2 {m['n_layer']}x{m['n_embd']} ({bare_before['params_no_pos'] / 1e6:.2f}M), "
        f"batch {size['batch']}x{size['length']}, fp32 matmul peak {peak1 / 1e9:.1f} GFLOP/s at {threads} thread(s)",
        columns=["side", "threads", "tokens/s", "x bare", "model GFLOP/s", "MFU"],
        rows=rows,
        lmrl={
            "ray_train_1_worker": ray1,
            "ray_train_2_workers": ray2,
            "ratio_2_workers": common.ratio(ray2["tokens_per_s"], bare_rate),
        },  # fmt: skip
        baseline={
            "tokens_per_s": bare_rate,
            "before": bare_before,
            "after": bare_after,
            "name": "bare PyTorch loop",
        },
        ratio_value=common.ratio(ray1["tokens_per_s"], bare_rate),
        ratio_meaning="Ray Train 1 worker tokens/s / bare loop tokens/s",
        target={"min": TARGET, "description": "Ray Train on 1 worker >= 0.95x the bare loop"},
        extra={
            "model": m,
            "batch": size["batch"],
            "length": size["length"],
            "flops_per_token": fpt,
            "matmul_peak_fp32_flops": {
                "threads": threads,
                "value": peak1,
                f"{2 * threads}_threads": peak2,
            },
            "gpu": gpu,
        },  # fmt: skip
        started=started,
    )
    (Path(args.work) / "pretrain" / "last.json").write_text(
        json.dumps({"ray1": ray1, "ray2": ray2})
    )


if __name__ == "__main__":
    main()
