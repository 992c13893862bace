"""``PolicyModel``: the Serve deployment that holds the policy and decodes in batches.

Concurrent requests that reach a replica are gathered by ``@serve.batch``
(up to ``max_batch_size`` completions, waiting at most
``batch_wait_timeout_s``) and answered by one call of
:func:`lmrl.policies.decoding.decode`: one batched candidate-scoring pass in
choose mode, one batched KV-cache generation in generate mode. The batch runs
in a worker thread, so the replica keeps accepting requests (which form the
next batch) and answering health checks meanwhile.

``check_health`` runs the model on a fixed prompt and fails if the logits
are not finite; Serve then replaces the replica, as it does when a replica
process dies.
"""

from __future__ import annotations

import asyncio
import time

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
        self._decode_batch.set_max_batch_size(max_batch_size)
        self._decode_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self._probe = torch.as_tensor(
            self.policy.tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"] or [self.policy.codec.eos_id]
        )[None]
        self._verify()  # a replica whose model cannot run never starts
        self._metrics = metrics.model_metrics()

    async def decode(self, request: DecodeRequest) -> DecodeResult:
        """Decodes one request, batched with the others that arrive meanwhile."""
        return await self._decode_batch(request)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005, batch_size_fn=_rows)
    async def _decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        start = time.perf_counter()
        results = await asyncio.to_thread(decode, self.policy, requests)
        elapsed_ms = 1000 * (time.perf_counter() - start)
        rows = _rows(requests)
        self._metrics["batch_rows"].observe(rows)
        self._metrics["decode_latency_ms"].observe(elapsed_ms)
        tokens = sum(c.completion_tokens for r in results for c in r.completions)
        if tokens:  # Ray counters reject increments of 0
            self._metrics["generated_tokens"].inc(tokens)
        return results

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
