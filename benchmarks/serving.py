"""Serving: latency and throughput of ``lmrl serve`` over loopback HTTP, batching on and off, against in-process decoding.

The script exports a generate-mode policy (the ``small`` preset's weights,
``lmrl/Arithmetic-v0``'s prompt format), starts a local Ray and Serve on a
free loopback port, and deploys it twice side by side with
:func:`lmrl.platform.serve.launch.deploy_apps`: once with batching
(``max_batch_size`` 32, ``lmrl serve``'s default wait of 5 ms
unless ``--batch-wait-timeout-s`` says otherwise) and once without (``max_batch_size`` 1).
Each replica has 1 CPU and 1 torch thread. Clients (asyncio + httpx in
this process) keep 1, 8 or 32 ``POST /v1/completions`` requests in flight
(``max_tokens`` 16, sampled, seeded); latency is per request, throughput is
completed requests per second.

The in-process baseline calls :func:`lmrl.policies.decoding.decode` on the
same policy in this process with one torch thread: one request at a time
(what concurrency 1 could reach without HTTP and Serve), and N requests in
one batched call (what perfect batching of N could reach).

    python benchmarks/serving.py            # full
    python benchmarks/serving.py --quick    # tiny model, few requests
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET = 4.0
ENV_ID = "lmrl/Arithmetic-v0"
MAX_TOKENS = 16
CONCURRENCY = (1, 8, 32)


def export_policy_dir(model_dir: str, out: Path) -> str:
    """An exported generate-mode policy with the model's (untrained) weights."""
    from transformers import AutoModelForCausalLM

    from lmrl.envs.adapter import AdapterConfig
    from lmrl.pipelines.export import export_policy

    if (out / "lmrl.json").is_file():
        return str(out)
    lm = AutoModelForCausalLM.from_pretrained(model_dir)
    state = {f"lm.{k}": v for k, v in lm.state_dict().items()}
    adapter = AdapterConfig(action_mode="generate", max_new_tokens=MAX_TOKENS)
    return str(
        export_policy(
            state, model_dir, out, env_id=ENV_ID, adapter=adapter, extra={"env_kwargs": {}}
        )
    )


def prompts(n: int) -> list[str]:
    import lmrl.envs

    env = lmrl.envs.make(ENV_ID)
    return [env.reset(seed=i)[0]["text"] for i in range(n)]


def _stats(latencies: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "requests": len(latencies),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * p99, 1),
        "throughput_rps": round(len(latencies) / wall, 2),
    }


async def _load(
    url: str, texts: list[str], concurrency: int, model_call: bool = True
) -> dict[str, Any]:
    """``concurrency`` clients, each sending its share of ``texts`` one after another.

    ``model_call=False`` sends ``GET /v1/models`` instead: the proxy and the ingress
    answer it without the policy, which measures what HTTP and Serve alone allow.
    """
    import httpx

    latencies: list[float] = []
    rows: list[int] = []
    queue = list(enumerate(texts))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:

        async def worker() -> None:
            while queue:
                i, text = queue.pop()
                body = {"prompt": text, "max_tokens": MAX_TOKENS, "temperature": 1.0, "seed": i}
                start = time.perf_counter()
                if model_call:
                    response = await client.post("/v1/completions", json=body)
                else:
                    response = await client.get("/v1/models")
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()
                rows.append(int(response.headers.get("x-lmrl-batch-rows", "1")))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {**_stats(latencies, wall), "mean_batch_rows": round(statistics.mean(rows), 2)}


def http_side(
    url: str, texts: list[str], concurrency: int, model_call: bool = True
) -> dict[str, Any]:
    warm = texts[: min(len(texts), 2 * concurrency)]
    asyncio.run(_load(url, warm, concurrency, model_call))
    return asyncio.run(_load(url, texts, concurrency, model_call))


def in_process(policy, texts: list[str], batch: int) -> dict[str, Any]:
    """``decode`` in this process: ``texts`` in calls of ``batch`` requests."""
    from lmrl.policies.decoding import DecodeRequest, SamplingParams, decode

    def call(chunk: list[tuple[int, str]]) -> None:
        decode(
            policy,
            [
                DecodeRequest(t, (), SamplingParams(max_tokens=MAX_TOKENS, temperature=1.0, seed=i))
                for i, t in chunk
            ],
        )

    items = list(enumerate(texts))
    call(items[:batch])  # warm-up
    latencies = []
    start = time.perf_counter()
    for k in range(0, len(items), batch):
        t = time.perf_counter()
        call(items[k : k + batch])
        latencies += [time.perf_counter() - t] * len(items[k : k + batch])
    return _stats(latencies, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    p = common.parser("serving", __doc__)
    p.add_argument(
        "--batch-wait-timeout-s",
        type=float,
        default=None,
        help="batching on: how long a replica waits to fill a batch (default: lmrl serve's default)",
    )
    args = p.parse_args(argv)
    started = common.setup(args)
    import torch

    from lmrl.platform.serve.config import ServeConfig
    from lmrl.platform.serve.launch import deploy_apps
    from lmrl.policies.text_policy import TextPolicy
    from lmrl.runtime import init_ray

    preset = "tiny" if args.quick else "small"
    per_client = 2 if args.quick else 10
    model_dir = common.tiny_model(args.work, preset)
    policy_dir = export_policy_dir(model_dir, Path(args.work) / "serving" / f"{preset}-generate")
    texts = prompts(per_client * max(CONCURRENCY))

    policy = TextPolicy.from_pretrained(policy_dir)
    torch.set_num_threads(args.threads)
    baseline = {c: in_process(policy, texts[: per_client * c], c) for c in CONCURRENCY}

    init_ray(
        num_cpus=3
    )  # two 1-CPU replicas, and a CPU for the proxy, the ingress and this client
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    common_cfg = {"policy": policy_dir, "auth": False, "num_cpus": float(args.threads), "max_tokens_limit": MAX_TOKENS,
                  "max_ongoing_requests": 64, "max_queued_requests": -1, "request_timeout_s": 120.0}  # fmt: skip
    wait = args.batch_wait_timeout_s
    if wait is None:
        wait = ServeConfig.model_fields["batch_wait_timeout_s"].default
    on = ServeConfig(**common_cfg, max_batch_size=32, batch_wait_timeout_s=wait)
    off = ServeConfig(**common_cfg, max_batch_size=1, max_n=1, batch_wait_timeout_s=0.0)
    url_on, url_off = deploy_apps(
        [(on, "bench-batched", "/batched"), (off, "bench-unbatched", "/unbatched")],
        "127.0.0.1",
        port,
    )
    results: dict[str, dict[int, dict[str, Any]]] = {"on": {}, "off": {}}
    try:
        for c in CONCURRENCY:
            share = texts[: per_client * c]
            results["off"][c] = http_side(url_off, share, c)
            results["on"][c] = http_side(url_on, share, c)
        ceiling = http_side(url_on, texts[: per_client * max(CONCURRENCY)], max(CONCURRENCY), False)
    finally:
        from ray import serve

        serve.shutdown()
    rows = []
    for c in CONCURRENCY:
        for label, r in (("serve, batching on", results["on"][c]), ("serve, batching off", results["off"][c]),
                         ("in-process decode, batch = concurrency", baseline[c])):  # fmt: skip
            rows.append(
                [
                    c,
                    label,
                    r["requests"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["throughput_rps"],
                    r.get("mean_batch_rows", c),
                ]
            )
    top = max(CONCURRENCY)
    rows.append([top, "serve, GET /v1/models (no policy call): HTTP + Serve alone", ceiling["requests"],
                 ceiling["p50_ms"], ceiling["p99_ms"], ceiling["throughput_rps"], "-"])  # fmt: skip
    common.report(
        "serving",
        args,
        title=f"Serving {preset} generate-mode policy over loopback HTTP, POST /v1/completions, max_tokens {MAX_TOKENS}, "
        f"1 CPU / {args.threads} torch thread per replica, batching on: max_batch_size 32, wait {1000 * wait:g} ms",
        columns=[
            "concurrency",
            "side",
            "requests",
            "p50 ms",
            "p99 ms",
            "requests/s",
            "rows per pass",
        ],
        rows=rows,
        lmrl={
            "batching_on": results["on"],
            "batching_off": results["off"],
            "serve_over_in_process_at_32": common.ratio(
                results["on"][top]["throughput_rps"], baseline[top]["throughput_rps"]
            ),
            "serve_over_in_process_at_1": common.ratio(
                results["on"][1]["throughput_rps"], baseline[1]["throughput_rps"]
            ),
        },  # fmt: skip
        baseline={
            "in_process": baseline,
            "http_serve_ceiling_no_model": ceiling,
            "batching_off_at_32": results["off"][top],
            "name": "batching off (and in-process decode)",
        },
        ratio_value=common.ratio(
            results["on"][top]["throughput_rps"], results["off"][top]["throughput_rps"]
        ),
        ratio_meaning=f"requests/s with batching / without, at concurrency {top}",
        target={
            "min": TARGET,
            "description": "at 32 concurrent requests, batching gives >= 4x the throughput without",
        },
        extra={
            "policy_dir": policy_dir,
            "configs": {"on": on.model_dump(), "off": off.model_dump()},
        },
        started=started,
    )


if __name__ == "__main__":
    main()
