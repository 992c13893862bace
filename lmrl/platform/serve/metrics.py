"""Prometheus metrics of a served policy, through Ray's metrics agent.

Ray exports every metric on each node's metrics endpoint
(``http://<node>:<metrics-export-port>/metrics``, Prometheus text format),
with the ``ray_`` prefix and the Serve tags ``application``, ``deployment``
and ``replica`` added:

=====================================================  ==========================================
``ray_lmrl_serve_requests_total{route, status}``       requests answered, by route and HTTP status
``ray_lmrl_serve_request_latency_ms{route}``           end-to-end latency in the ingress (histogram)
``ray_lmrl_serve_generated_tokens_total``              completion tokens produced
``ray_lmrl_serve_batch_rows``                          completions per batched pass (histogram)
``ray_lmrl_serve_decode_latency_ms``                   time of one batched pass (histogram)
=====================================================  ==========================================

Serve's own metrics (``ray_serve_num_http_requests_total``,
``ray_serve_http_request_latency_ms``, replica health...) are on the same
endpoint. ``docs/serving.md`` shows how to scrape it.
"""

from __future__ import annotations

from typing import Any

LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128]


def ingress_metrics() -> dict[str, Any]:
    """Request count and latency, recorded by the HTTP ingress (create inside a replica)."""
    from ray.serve import metrics

    return {
        "requests": metrics.Counter(
            "lmrl_serve_requests", description="Requests answered, by route and HTTP status.", tag_keys=("route", "status")
        ),
        "latency_ms": metrics.Histogram(
            "lmrl_serve_request_latency_ms",
            description="End-to-end request latency in the ingress, in milliseconds.",
            boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=("route",),
        ),
    }


def model_metrics() -> dict[str, Any]:
    """Generated tokens, batch sizes and batch latency, recorded by policy replicas."""
    from ray.serve import metrics

    return {
        "generated_tokens": metrics.Counter(
            "lmrl_serve_generated_tokens", description="Completion tokens produced by the policy."
        ),
        "batch_rows": metrics.Histogram(
            "lmrl_serve_batch_rows", description="Completions decoded per batched pass.", boundaries=BATCH_BOUNDARIES
        ),
        "decode_latency_ms": metrics.Histogram(
            "lmrl_serve_decode_latency_ms",
            description="Time of one batched decoding pass, in milliseconds.",
            boundaries=LATENCY_BOUNDARIES_MS,
        ),
    }
