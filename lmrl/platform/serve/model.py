"""``PolicyModel``: the Serve deployment that holds the policy and decodes in batches.

Concurrent requests that reach a replica are queued and answered in batches
(up to ``max_batch_size`` completions) by one call of
:func:`lmrl.policies.decoding.decode`: one batched candidate-scoring pass in
choose mode, one batched KV-cache generation in generate mode. The batch runs
in a worker thread, so the replica keeps accepting requests and answering
health checks meanwhile.

A batch is formed when the previous one has finished: it takes every request
queued by then, waiting for more at most ``batch_wait_timeout_s`` after the
oldest queued request arrived. (Ray Serve's ``@serve.batch`` forms the next
batch from the requests of the first ``batch_wait_timeout_s`` while the
current one still runs, so under load its batches stay as small as what
arrives in that window; see BENCHMARKS.md, serving.)

``check_health`` runs the model on a fixed prompt and fails if the logits
are not finite; Serve then replaces the replica, as it does when a replica
process dies.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import torch
from ray import serve

from lmrl.platform.serve import metrics
from lmrl.policies.decoding import DecodeRequest, DecodeResult, decode
from lmrl.policies.text_policy import TextPolicy

_PROBE_TEXT = "health check"


def _rows(requests: list[DecodeRequest]) -> int:
    return sum(r.rows for r in requests)


@serve.deployment(name="PolicyModel")
class PolicyModel:
    """One replica of a served policy.

    Args:
        policy_path: The exported policy directory.
        max_batch_size: Most completions decoded in one batched pass.
        batch_wait_timeout_s: How long to wait for a batch to fill.
        torch_threads: Torch intra-op threads (match the replica's CPUs).
    """

    def __init__(self, policy_path: str, max_batch_size: int, batch_wait_timeout_s: float, torch_threads: int = 1) -> None:
        torch.set_num_threads(max(1, int(torch_threads)))
        self.policy = TextPolicy.from_pretrained(policy_path)
        self.max_batch_size = int(max_batch_size)
        self.batch_wait_timeout_s = float(batch_wait_timeout_s)
        # (request, future, arrival time), oldest first; served by one batching task.
        self._queue: deque[tuple[DecodeRequest, asyncio.Future, float]] = deque()
        self._arrived: asyncio.Event | None = None
        self._batcher: asyncio.Task | None = None
        self._probe = torch.as_tensor(
            self.policy.tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"] or [self.policy.codec.eos_id]
        )[None]
        self._verify()  # a replica whose model cannot run never starts
        self._metrics = metrics.model_metrics()

    async def decode(self, request: DecodeRequest) -> DecodeResult:
        """Decodes one request, batched with the others that are waiting."""
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.done():
            self._arrived = asyncio.Event()
            self._batcher = loop.create_task(self._batch_loop())
        future: asyncio.Future = loop.create_future()
        self._queue.append((request, future, loop.time()))
        self._arrived.set()
        return await future  # a cancelled caller cancels the future; the batcher skips it

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            self._drop_cancelled()
            if not self._queue:
                continue
            deadline = self._queue[0][2] + self.batch_wait_timeout_s
            while (
                _rows([r for r, _, _ in self._queue]) < self.max_batch_size
                and loop.time() < deadline
            ):
                try:
                    await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
                except asyncio.TimeoutError:
                    break
                self._arrived.clear()
            self._drop_cancelled()
            batch, rows = [], 0
            while self._queue and (
                not batch or rows + self._queue[0][0].rows <= self.max_batch_size
            ):
                entry = self._queue.popleft()
                batch.append(entry)
                rows += entry[0].rows
            if self._queue:
                self._arrived.set()  # more waiting: the next batch goes right after this one
            if batch:
                await self._run_batch([r for r, _, _ in batch], [f for _, f, _ in batch])

    def _drop_cancelled(self) -> None:
        self._queue = deque(entry for entry in self._queue if not entry[1].done())

    async def _run_batch(
        self, requests: list[DecodeRequest], futures: list[asyncio.Future]
    ) -> None:
        start = time.perf_counter()
        try:
            results = await asyncio.to_thread(decode, self.policy, requests)
        except Exception as exc:  # every caller of the batch gets the error
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)
        elapsed_ms = 1000 * (time.perf_counter() - start)
        self._metrics["batch_rows"].observe(_rows(requests))
        self._metrics["decode_latency_ms"].observe(elapsed_ms)
        tokens = sum(c.completion_tokens for r in results for c in r.completions)
        if tokens:  # Ray counters reject increments of 0
            self._metrics["generated_tokens"].inc(tokens)

    def _verify(self) -> None:
        with torch.no_grad():
            logits = self.policy.lm(input_ids=self._probe).logits
        if not bool(torch.isfinite(logits).all()):
            raise RuntimeError("policy health check failed: the model's logits are not finite")

    async def check_health(self) -> None:
        """Serve's health check: the model runs and gives finite logits."""
        await asyncio.to_thread(self._verify)

    async def ping(self) -> dict[str, str]:
        """What ``GET /healthz`` reports: the model answered a forward pass."""
        await asyncio.to_thread(self._verify)
        return {"status": "ok", "action_mode": self.policy.action_mode}
