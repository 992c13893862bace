"""reasoning-gym in generate mode with GRPO groups: the rg_grpo example, shrunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("reasoning_gym")  # the reasoning-gym extra; the test extra installs it

EXAMPLE = Path(__file__).parents[3] / "examples" / "rg_grpo.yaml"


def test_example_grpo_groups_answer_one_question_and_train(ray_session, tiny_model_dir, tmp_path):
    from lmrl.pipelines.rl.builder import build_algorithm_config
    from lmrl.pipelines.rl.learner import GROUP_INFO
    from lmrl.platform.config import load_config

    cfg = load_config(
        EXAMPLE,
        [f"policy.model={tiny_model_dir}", "policy.pretrain_steps=0", f"run.output_dir={tmp_path}",
         "algorithm.train_batch_size=32", "algorithm.minibatch_size=16", "algorithm.num_epochs=1"],
    )  # fmt: skip
    assert cfg.env.id.startswith("rg/") and cfg.policy.action_mode == "generate"
    assert cfg.algorithm.advantage_estimator == "grpo" and cfg.algorithm.group_size == 8
    assert cfg.resources.num_envs_per_env_runner == 16  # two groups a batched step
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=32, random_actions=False)
        result = algo.train()
    finally:
        algo.stop()
    groups: dict[str, list[dict]] = {}
    prompts: dict[str, set[tuple]] = {}
    for ep in episodes:
        key = ep.get_infos(0)[GROUP_INFO]
        groups.setdefault(key, []).append(ep.get_infos(0))
        prompts.setdefault(key, set()).add(tuple(np.asarray(ep.get_observations(0)["prompt_ids"])))
    assert len(groups) >= 4 and all(len(g) == 8 for g in groups.values())  # whole groups of 8
    # The 8 envs of a group were reset with one seed: the same reasoning-gym problem ...
    questions = {key: {info["index"] for info in g} for key, g in groups.items()}
    assert all(len(q) == 1 for q in questions.values()), questions
    # GRPO draws episode seeds from 0..2**32: they stay training seeds (the training dataset).
    assert {info["split"] for g in groups.values() for info in g} == {"train"}
    assert all(len(p) == 1 for p in prompts.values())  # the policy saw one prompt per group
    # ... and groups differ (10,000 problems: two groups on one problem would be a seeding bug).
    assert len({next(iter(q)) for q in questions.values()}) == len(groups), questions
    # Rewards are the dataset's own scores of the answers written, 0 to 1.
    final = [ep.get_infos(-1) for ep in episodes]
    assert all(info["dataset"] == "basic_arithmetic" and "answer" in info for info in final)
    rewards = [float(np.sum(ep.get_rewards())) for ep in episodes]
    assert rewards == [info["score"] for info in final] and all(0.0 <= r <= 1.0 for r in rewards)
    # One GRPO iteration trained on whole groups (an untrained model's groups often all score 0:
    # zero advantages, no update; that groups' advantages are z-scores is tests/pipelines/test_rl's).
    stats = result["learners"]["default_policy"]
    assert np.isfinite(float(stats["policy_loss"])) and float(stats["vf_loss"]) == 0.0  # no critic
