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


def cloned_cs_policy(model_dir: str, out: Path, steps: int = 150, seed: int = 0) -> str:
    """A choose-mode CustomerSupport-v0 policy that solves the env: the tiny LM trained on expert play.

    Behaviour cloning in the policy's own terms: the cross-entropy of the
    expert's utterance under the softmax over the candidates' LM scores (the
    choose-mode policy), on every state of 200 expert episodes. A minute on
    two cores. PPO from scratch needs far longer on this env (see docs/serving.md).
    """
    import numpy as np
    import torch

    import lmrl.envs
    from lmrl.envs.adapter import TextCodec
    from lmrl.pipelines.export import export_policy
    from lmrl.policies import lm_ops
    from lmrl.policies.lm import load_lm

    lm, tokenizer = load_lm(model_dir)
    adapter = AdapterConfig(action_mode="choose", max_prompt_tokens=128)
    codec = TextCodec(tokenizer, adapter)
    encoded, targets = [], []
    for episode in range(200):
        env = lmrl.envs.make(CS)
        obs, _ = env.reset(seed=100_000 + episode)
        done = False
        while not done:
            action = env.unwrapped.expert_action()
            encoded.append(codec.encode_observation(obs))
            targets.append(obs["actions"].index(action))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    data = {k: torch.as_tensor(np.stack([e[k] for e in encoded])) for k in encoded[0]}
    y = torch.tensor(targets)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    lm.train()
    for _ in range(steps):
        i = torch.randint(len(y), (32,), generator=generator)
        scores, _ = lm_ops.score_candidates(lm, data["prompt_ids"][i], data["prompt_mask"][i], data["cand_ids"][i], data["cand_mask"][i])
        logits = torch.where(data["action_mask"][i] > 0, scores, lm_ops.NEG)  # (B, K)
        loss = torch.nn.functional.cross_entropy(logits, y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    state = {f"lm.{k}": v.detach() for k, v in lm.state_dict().items()}
    extra = {"env_kwargs": {}, "trained_by": "behaviour cloning of the scripted expert (tests)"}
    return str(export_policy(state, model_dir, out, env_id=CS, adapter=adapter, extra=extra))


def trained_cs_policy(model_dir: str, tmp_path_factory: Any) -> str:
    """A CustomerSupport-v0 policy that solves the env, made once per test session.

    Set ``LMRL_TEST_CS_POLICY`` to a run or export directory (for example one
    trained with ``lmrl train examples/customer_support_choose.yaml``) to serve
    that policy instead of the expert clone.
    """
    if "cs_policy" not in _STATE:
        cached = os.environ.get("LMRL_TEST_CS_POLICY")
        if cached:
            from lmrl.pipelines.evaluate import resolve_policy_dir

            _STATE["cs_policy"] = str(resolve_policy_dir(cached))
        else:
            _STATE["cs_policy"] = cloned_cs_policy(model_dir, tmp_path_factory.mktemp("cs_clone") / "export")
    return _STATE["cs_policy"]
