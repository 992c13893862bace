"""``ServeConfig``: everything a policy deployment needs, and the Serve config YAML it implies.

One config drives both ways of deploying:

* ``lmrl serve PATH`` builds the application in-process (:func:`~lmrl.platform.serve.app.build_app`);
* ``lmrl serve PATH --print-config > serve.yaml`` writes a Ray Serve config
  that ``serve deploy serve.yaml`` (or ``serve run serve.yaml``) accepts:
  the application's import path is :func:`~lmrl.platform.serve.app.app_builder`
  with this config as its ``args``, and the replica, autoscaling, queue and
  health-check settings appear under ``deployments``, where Serve lets you
  edit them.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Serve application name, and the deployment names inside it.
APP_NAME = "lmrl"
MODEL_DEPLOYMENT = "PolicyModel"
INGRESS_DEPLOYMENT = "ApiIngress"


class ServeConfig(BaseModel):
    """How to serve one exported policy.

    Attributes:
        policy: The exported policy directory (with ``lmrl.json``).
        model_name: Model id clients send and ``/v1/models`` lists
            (default: the run's directory name).
        replicas: Policy replicas (the initial number when autoscaling).
        max_replicas: Autoscale between ``replicas`` and this many (``None``: fixed).
        num_cpus: CPUs reserved per policy replica (its torch threads, at least 1).
        max_ongoing_requests: Requests a policy replica works on at once (a batch
            is assembled from these, so keep it >= ``max_batch_size``).
        max_queued_requests: Requests waiting for a replica beyond that; more
            get 503 with ``Retry-After`` (-1: no limit).
        request_timeout_s: A request that takes longer gets 408.
        retry_after_s: ``Retry-After`` seconds on 503 answers.
        max_batch_size: Most completions (rows) decoded in one batched pass.
        batch_wait_timeout_s: How long a replica waits to fill a batch.
        max_tokens_limit: Largest ``max_tokens`` a request may ask for.
        max_n: Largest ``n`` (completions per request).
        max_body_bytes: Largest request body; larger bodies get 413.
        health_check_period_s: Seconds between Serve's replica health checks.
        health_check_timeout_s: A health check slower than this fails.
        auth: Require an API key (``False`` only with ``--no-auth``).
        api_key_sha256: Hex SHA-256 of the API key (the key itself is never stored).
    """

    model_config = ConfigDict(extra="forbid")

    policy: str
    model_name: str | None = None
    replicas: int = Field(1, ge=1)
    max_replicas: int | None = Field(None, ge=1)
    num_cpus: float = Field(1.0, ge=0)
    max_ongoing_requests: int = Field(32, ge=1)
    max_queued_requests: int = Field(64, ge=-1)
    request_timeout_s: float = Field(30.0, gt=0)
    retry_after_s: int = Field(1, ge=0)
    max_batch_size: int = Field(16, ge=1)
    batch_wait_timeout_s: float = Field(0.005, ge=0)
    max_tokens_limit: int = Field(128, ge=1)
    max_n: int = Field(8, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    health_check_period_s: float = Field(2.0, gt=0)
    health_check_timeout_s: float = Field(10.0, gt=0)
    auth: bool = True
    api_key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _consistent(self) -> ServeConfig:
        if self.max_n > self.max_batch_size:
            raise ValueError(
                f"max_n ({self.max_n}) must be <= max_batch_size ({self.max_batch_size}): "
                "the n completions of one request are decoded in one batch"
            )
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= replicas ({self.replicas})")
        if self.auth and self.api_key_sha256 is None:
            raise ValueError("auth is on but no api_key_sha256 is set; pass a key or auth=False")
        return self

    # --- Serve deployment options ----------------------------------------------------------

    def model_options(self) -> dict[str, Any]:
        """``.options()`` of the policy deployment (replicas, queues, health checks)."""
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "graceful_shutdown_timeout_s": 5.0,
            "backpressure_config": {"status_code": 503, "retry_after_s": float(self.retry_after_s)},
            "ray_actor_options": {"num_cpus": self.num_cpus},
        }
        if self.max_replicas is not None and self.max_replicas > self.replicas:
            options["autoscaling_config"] = {
                "min_replicas": self.replicas,
                "initial_replicas": self.replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": max(1, self.max_batch_size // 2),
            }
        else:
            options["num_replicas"] = self.replicas
        return options

    def ingress_options(self) -> dict[str, Any]:
        """``.options()`` of the HTTP ingress (light: validation, auth, formatting)."""
        scale = self.max_replicas or self.replicas
        queue = self.max_queued_requests if self.max_queued_requests >= 0 else 1000
        return {
            "num_replicas": 1,
            # The ingress must never be the bottleneck: the policy deployment's queue decides overload.
            "max_ongoing_requests": max(100, 2 * (self.max_ongoing_requests * scale + queue)),
            "ray_actor_options": {"num_cpus": 0},
        }


def serve_config_dict(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """The Ray Serve config (``serve deploy`` schema) for ``config``."""
    model = config.model_options()
    ingress = config.ingress_options()
    args = config.model_dump(exclude_none=True)
    return {
        "proxy_location": "HeadOnly",
        "http_options": {
            "host": host,
            "port": port,
            # Backstop only: the ingress answers 408 itself at request_timeout_s.
            "request_timeout_s": config.request_timeout_s + 10,
        },
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": "lmrl.platform.serve.app:app_builder",
                "args": args,
                "deployments": [
                    {"name": MODEL_DEPLOYMENT, **model},
                    {"name": INGRESS_DEPLOYMENT, **ingress},
                ],
            }
        ],
    }


def serve_config_yaml(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000) -> str:
    """:func:`serve_config_dict` as YAML, with a header saying how to use it."""
    header = (
        "# Ray Serve config for an lmrl policy, written by `lmrl serve --print-config`.\n"
        "# Deploy it on a running Ray cluster with: serve deploy <this file>\n"
        "# (or run it in the foreground with: serve run <this file>).\n"
        "# The API key is stored as its SHA-256 only; clients send the key itself.\n"
    )
    return header + yaml.safe_dump(serve_config_dict(config, host, port), sort_keys=False)
