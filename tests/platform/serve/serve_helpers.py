"""Shared helpers of the Serve tests: exported policies, one Serve per test session, deployments.

Not a ``conftest.py`` on purpose: a second ``conftest`` module would shadow
``tests/conftest.py`` for the tests that do ``from conftest import ...``.
Everything here is plain functions; each test module wraps them in its own
module-scoped fixtures, so Serve starts once per session and each module
deploys (and deletes) its own applications.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from lmrl.envs.adapter import AdapterConfig
from lmrl.platform.serve.auth import key_digest
from lmrl.platform.serve.config import ServeConfig

CS = "lmrl/CustomerSupport-v0"
KEY = "lmrl-test-key-0123456789"
ROOT = Path(__file__).resolve().parents[3]
_STATE: dict[str, Any] = {}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def export_random_policy(model_dir: str, out: Path, mode: str, env_id: str = CS) -> str:
    """An exported policy with the tiny model's (untrained) weights; seconds to build."""
    from transformers import AutoModelForCausalLM

    from lmrl.pipelines.export import export_policy

    lm = AutoModelForCausalLM.from_pretrained(model_dir)
    state = {f"lm.{k}": v for k, v in lm.state_dict().items()}
    adapter = AdapterConfig(action_mode=mode, max_prompt_tokens=128)
    return str(export_policy(state, model_dir, out, env_id=env_id, adapter=adapter, extra={"env_kwargs": {}}))


def config(policy: str, **overrides: Any) -> ServeConfig:
    """A ServeConfig sized for the 2-core test machine, with the test key."""
    values: dict[str, Any] = {
        "policy": policy,
        "api_key_sha256": key_digest(KEY),
        "num_cpus": 0.25,
        "max_batch_size": 8,
        "max_n": 4,
        "max_tokens_limit": 32,
        "health_check_period_s": 1.0,
        **overrides,
    }
    return ServeConfig(**values)


def deploy(apps: list[tuple[ServeConfig, str, str]]) -> list[str]:
    """Deploys applications on the session's Serve (started on a free loopback port the first time)."""
    from lmrl.platform.serve.launch import deploy_apps

    port = _STATE.setdefault("port", free_port())
    return deploy_apps(apps, "127.0.0.1", port)


def undeploy(names: list[str]) -> None:
    """Deletes applications (their replicas stop; Serve keeps running for the next module)."""
    from ray import serve

    for name in names:
        serve.delete(name)


def trained_cs_policy(tmp_path_factory: Any) -> str:
    """A choose-mode CustomerSupport-v0 policy trained with PPO (examples/customer_support_choose.yaml).

    Trained once per test session. Set ``LMRL_TEST_CS_POLICY`` to an export
    directory (or run directory) from an earlier run to skip the training.
    """
    if "cs_policy" in _STATE:
        return _STATE["cs_policy"]
    cached = os.environ.get("LMRL_TEST_CS_POLICY")
    if cached:
        from lmrl.pipelines.evaluate import resolve_policy_dir

        _STATE["cs_policy"] = str(resolve_policy_dir(cached))
        return _STATE["cs_policy"]
    from lmrl.pipelines.rl import train
    from lmrl.platform.config import load_config

    out = tmp_path_factory.mktemp("cs_train")
    cfg = load_config(
        str(ROOT / "examples" / "customer_support_choose.yaml"),
        [f"run.output_dir={out}", "run.progress=false", "run.eval_episodes=20"],
    )
    run = train(cfg)
    _STATE["cs_policy"] = str(run / "export")
    return _STATE["cs_policy"]
