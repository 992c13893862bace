"""RLlib PPO with the LM policy, on a real local Ray: updates, invariants, save/load, export."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_run_config
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from rllib_helpers import learner_batch, sample_learner_batch

import lmrl.envs
from lmrl.pipelines.rl.builder import build_algorithm_config
from lmrl.pipelines.rl.loop import train


def _learner_module(algo):
    return algo.learner_group._learner.module["default_policy"]


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_one_iteration_updates_every_parameter(ray_session, tiny_model_dir, tmp_path, mode):
    env_id = "lmrl/Maze-v0" if mode == "choose" else "lmrl/GuessNumber-v0"
    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), env={"id": env_id}, policy={"action_mode": mode}, algorithm={"kl_ref_coeff": 0.1}
    )
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        before = {k: np.array(v) for k, v in algo.learner_group.get_weights()["default_policy"].items()}
        result = algo.train()
        after = algo.learner_group.get_weights()["default_policy"]
        stats = result["learners"]["default_policy"]
    finally:
        algo.stop()
    unchanged = [k for k in before if np.array_equal(before[k], after[k])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    for key in ("policy_loss", "vf_loss", "entropy", "kl_ref", "total_loss"):
        assert np.isfinite(float(stats[key])), key
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_env_runner_logp_matches_learner_recomputation(ray_session, tiny_model_dir, tmp_path, mode):
    env_id = "lmrl/Maze-v0" if mode == "choose" else "lmrl/GuessNumber-v0"
    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": env_id}, policy={"action_mode": mode})
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        algo.train()  # weights move away from init, then are synced to the runner
        episodes = algo.env_runner.sample(num_timesteps=48, random_actions=False)
        module = _learner_module(algo)
        obs = {k: [] for k in algo.config.observation_space.spaces}
        actions, logps = [], []
        for ep in episodes:
            n = len(ep)
            ep_obs = ep.get_observations()  # finalized: a dict of (n + 1, ...) arrays
            for k in obs:
                obs[k].append(np.asarray(ep_obs[k])[:n])
            actions.append(np.asarray(ep.get_actions()))
            logps.append(np.asarray(ep.get_extra_model_outputs(Columns.ACTION_LOGP)))
        batch = {
            Columns.OBS: {k: torch.as_tensor(np.concatenate(v)) for k, v in obs.items()},
            Columns.ACTIONS: torch.as_tensor(np.concatenate(actions)),
        }
        with torch.no_grad():
            out = module.forward_train(batch)
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        recomputed = dist.logp(batch[Columns.ACTIONS]).numpy()
    finally:
        algo.stop()
    sampled = np.concatenate(logps).reshape(-1)
    assert len(sampled) >= 48
    np.testing.assert_allclose(recomputed, sampled, atol=1e-4)


def test_train_writes_run_exports_and_resumes(ray_session, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from lmrl.policies.text_policy import TextPolicy

    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), run={"stop": {"iterations": 2}, "checkpoint_every": 1})
    run = train(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert rows[-1]["timesteps"] >= 128
    assert (run / "learning_curve.png").stat().st_size > 1000
    state = json.loads((run / "state.json").read_text())
    assert state["iteration"] == 2

    export = run / "export"
    meta = json.loads((export / "lmrl.json").read_text())
    assert meta["env_id"] == "lmrl/Maze-v0" and meta["action_mode"] == "choose"
    assert meta["prompt_format"] == "{text}\nAction:"
    hf = AutoModelForCausalLM.from_pretrained(export)
    assert hf.config.n_layer == 2

    # The exported policy acts like the trained module: same greedy actions.
    policy = TextPolicy.from_pretrained(export)
    env = lmrl.envs.make("lmrl/Maze-v0")
    observations = [env.reset(seed=s)[0] for s in range(16)]
    greedy_export = policy.act(observations)
    resumed_cfg = cfg.model_copy(deep=True)
    resumed_cfg.run.stop.iterations = 3
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        algo.restore_from_path(state["checkpoint"])
        module = _learner_module(algo)
        batch = {
            Columns.OBS: {
                k: torch.as_tensor(np.stack([policy.codec.encode_observation(o)[k] for o in observations]))
                for k in algo.config.observation_space.spaces
            }
        }
        idx = module.forward_inference(batch)[Columns.ACTIONS].tolist()
    finally:
        algo.stop()
    assert greedy_export == [o["actions"][i] for o, i in zip(observations, idx, strict=True)]

    # --resume continues the same run from its checkpoint.
    run2 = train(resumed_cfg, resume=str(run))
    assert run2 == run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert rows[2]["timesteps"] > rows[1]["timesteps"]


def _assert_greedy_choices(chosen: list[str], observations: list[dict], scores: torch.Tensor) -> None:
    """Each chosen action is the module's greedy one, or ties it within float noise (1e-4).

    APPO's updates are asynchronous, so its weights differ from run to run; a
    near-tie between two candidates (seen once under load: 'east' for 'north')
    may then resolve either way in the export's and the module's passes.
    """
    for obs, action, row in zip(observations, chosen, scores, strict=True):
        assert action in obs["actions"], (action, obs["actions"])
        k = obs["actions"].index(action)
        assert float(row[k]) >= float(row.max()) - 1e-4, (action, obs["actions"], row.tolist())


@pytest.mark.parametrize("name", ["APPO", "DQN"])
def test_appo_and_dqn_update_and_export(ray_session, tiny_model_dir, tmp_path, name):
    from lmrl.policies.text_policy import TextPolicy

    cfg = tiny_run_config(
        tiny_model_dir,
        str(tmp_path),
        algorithm={"name": name, "train_batch_size": 32, "minibatch_size": 32, "target_update_freq": 64},
        resources={"num_env_runners": 1 if name == "APPO" else 0, "num_cpus_per_env_runner": 0.5},
        run={"stop": {"timesteps": 200}},
    )
    run = train(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    loss_key = "qf_loss" if name == "DQN" else "policy_loss"
    assert any(r[loss_key] is not None and np.isfinite(r[loss_key]) for r in rows), rows
    assert rows[-1]["timesteps"] >= 200
    meta = json.loads((run / "export" / "lmrl.json").read_text())
    assert meta["policy_head"] == ("q" if name == "DQN" else "lm")

    # The export acts exactly like the trained module, greedily.
    policy = TextPolicy.from_pretrained(run / "export")
    env = lmrl.envs.make("lmrl/Maze-v0")
    observations = [env.reset(seed=s)[0] for s in range(8)]
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        state = json.loads((run / "state.json").read_text())
        algo.restore_from_path(state["checkpoint"])
        module = _learner_module(algo)
        batch = {
            Columns.OBS: {
                k: torch.as_tensor(np.stack([policy.codec.encode_observation(o)[k] for o in observations]))
                for k in algo.config.observation_space.spaces
            }
        }
        with torch.no_grad():  # (B, K): candidate logits (APPO) or Q-values (DQN), the greedy scores
            if name == "DQN":
                from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS

                scores = module.compute_q_values(batch)[QF_PREDS]
            else:
                scores = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    finally:
        algo.stop()
    _assert_greedy_choices(policy.act(observations), observations, scores)


def test_learner_drops_the_loss_masked_bootstrap_rows(ray_session, tiny_model_dir, tmp_path):
    """One-step episodes: RLlib adds a masked bootstrap row per episode; the learner never trains on it."""
    from ray.rllib.core.columns import Columns

    from lmrl.pipelines.rl.builder import DropMaskedRows, build_algorithm_config

    batch = {
        "p": {
            Columns.LOSS_MASK: torch.tensor([True, False, True, False]),
            Columns.OBS: {"prompt_ids": torch.arange(8).reshape(4, 2)},
            "advantages": np.array([1.0, 2.0, 3.0, 4.0]),
        }
    }
    out = DropMaskedRows()(rl_module=None, batch=batch, episodes=[])["p"]
    assert out[Columns.LOSS_MASK].tolist() == [True, True]
    assert out[Columns.OBS]["prompt_ids"].tolist() == [[0, 1], [4, 5]]
    assert out["advantages"].tolist() == [-1.0, 1.0]  # standardised again over the rows that train

    cfg = tiny_run_config(tiny_model_dir, str(tmp_path), env={"id": "lmrl/Arithmetic-v0"}, policy={"action_mode": "generate"})
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    sampled = result["env_runners"]["num_env_steps_sampled"]
    assert learner["num_module_steps_trained"] == sampled  # one epoch over the real rows only, not 2x
    assert np.isfinite(learner["policy_loss"])


def _sample_then_train(algo):
    """Episodes sampled by the runner, the learner batch its connectors make of them, and the
    learner's weights before and after one ``algo.train()`` (with its result)."""
    episodes, batch = sample_learner_batch(algo, num_timesteps=64)
    before = {k: np.array(v) for k, v in algo.learner_group.get_weights()["default_policy"].items()}
    result = algo.train()
    after = algo.learner_group.get_weights()["default_policy"]
    return episodes, batch, before, after, result


def test_critic_free_ppo_uses_normalised_discounted_returns(ray_session, tiny_model_dir, tmp_path):
    """``advantage_estimator: reinforce++``: no value pass or loss; advantages are batch-normalised returns."""
    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), env={"id": "lmrl/Maze-v0"}, algorithm={"advantage_estimator": "reinforce++"}
    )
    gamma = cfg.algorithm.gamma
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        episodes, batch, before, after, result = _sample_then_train(algo)
    finally:
        algo.stop()
    returns = []
    for ep in episodes:
        g, out = 0.0, []
        for r in reversed(np.asarray(ep.get_rewards(), dtype=np.float64)):
            g = r + gamma * g
            out.append(g)
        returns.extend(reversed(out))
    returns = np.array(returns)
    expected = (returns - returns.mean()) / max(1e-4, returns.std())
    np.testing.assert_allclose(np.asarray(batch["advantages"], dtype=np.float64), expected, rtol=1e-4, atol=1e-4)
    assert len(returns) == len(batch["advantages"])  # the masked bootstrap rows are dropped too
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert {k for k in before if k.startswith("value_head")}.isdisjoint(changed)  # no critic to train
    assert {k for k in before if k.startswith("lm.")} <= changed
    stats = result["learners"]["default_policy"]
    assert float(stats["vf_loss"]) == 0.0 and np.isfinite(float(stats["policy_loss"]))


def test_grpo_groups_start_alike_and_normalise_returns_within_groups(ray_session, tiny_model_dir, tmp_path):
    """``advantage_estimator: grpo``: each group of envs answers one prompt; advantages are group z-scores."""
    from lmrl.pipelines.rl.builder import GROUP_INFO

    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), env={"id": "lmrl/Arithmetic-v0"}, policy={"action_mode": "generate"},
        algorithm={"advantage_estimator": "grpo", "group_size": 4}, resources={"num_envs_per_env_runner": 8},
    )  # fmt: skip
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        episodes, batch, before, after, result = _sample_then_train(algo)
        # As PPO samples (whole episodes): each sample() resets the envs with the same seed.
        starts = [{ep.get_infos(0)[GROUP_INFO] for ep in algo.env_runner.sample()} for _ in range(3)]
    finally:
        algo.stop()
    assert all(len(s) == 2 for s in starts) and len(set.union(*starts)) == 6  # 2 new groups per call
    groups: dict[str, list] = {}
    for ep in episodes:
        groups.setdefault(ep.get_infos(0)[GROUP_INFO], []).append(ep)
    assert len(episodes) >= 64 and sorted({len(g) for g in groups.values()}) == [4]  # whole groups of 4
    prompts = {key: {tuple(np.asarray(ep.get_observations(0)["prompt_ids"])) for ep in g} for key, g in groups.items()}
    assert all(len(p) == 1 for p in prompts.values())  # one prompt per group ...
    assert len({next(iter(p)) for p in prompts.values()}) > len(groups) // 2  # ... and they differ between groups
    adv = np.asarray(batch["advantages"], dtype=np.float64)
    assert len(adv) == len(episodes)  # one row per one-step episode: the bootstrap rows are gone
    expected = []
    for ep in episodes:
        r = np.array([float(np.sum(e.get_rewards())) for e in groups[ep.get_infos(0)[GROUP_INFO]]])
        expected.append((float(np.sum(ep.get_rewards())) - r.mean()) / (r.std(ddof=1) + 1e-4))
    np.testing.assert_allclose(adv, expected, rtol=1e-4, atol=1e-4)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert {k for k in before if k.startswith("lm.")} <= changed and not any(k.startswith("value_head") for k in changed)
    assert np.isfinite(float(result["learners"]["default_policy"]["policy_loss"]))


def test_token_level_ratio_loss_is_the_token_mean_of_the_advantage_before_an_update(
    ray_session, tiny_model_dir, tmp_path
):
    """``importance_sampling_level: token``: each token up to EOS is one term of the surrogate.

    The KL penalty is per token as well: with the reference 0.1 nats above every sampled token,
    it adds ``coeff * (exp(0.1) - 1.1)`` whatever the answers' lengths (the k3 of each answer's
    summed log-ratio, the sequence-level penalty, would add more for longer answers).
    """
    from lmrl.policies import lm_ops
    from lmrl.policies.module import REF_LOGP, REF_TOKEN_LOGP

    coeff = 0.5
    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), env={"id": "lmrl/Arithmetic-v0"}, policy={"action_mode": "generate"},
        algorithm={"advantage_estimator": "grpo", "group_size": 4, "importance_sampling_level": "token",
                   "entropy_coeff": 0.0, "kl_ref_coeff": coeff},
        resources={"num_envs_per_env_runner": 8},
    )  # fmt: skip
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        learner = algo.learner_group._learner
        _, batch = sample_learner_batch(algo, num_timesteps=64)
        module = learner.module["default_policy"].unwrapped()
        module_config = learner.config.get_config_for_module("default_policy")
        with torch.no_grad():
            fwd_out = module.forward_train(batch)
            loss = learner.compute_loss_for_module(
                module_id="default_policy", config=module_config, batch=batch, fwd_out=fwd_out
            )
            token_logp = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS]).token_logp
            shifted = dict(fwd_out)
            shifted[REF_TOKEN_LOGP] = token_logp + 0.1
            shifted[REF_LOGP] = shifted[REF_TOKEN_LOGP].sum(-1)
            penalised = learner.compute_loss_for_module(
                module_id="default_policy", config=module_config, batch=batch, fwd_out=shifted
            )
        result = algo.train()
    finally:
        algo.stop()
    tokens = batch[Columns.ACTIONS].long()
    live = (~lm_ops.done_before(tokens, module.eos_id)).float()
    assert 0 < live.sum() < live.numel() or bool((live == 1).all())
    expected = -(batch["advantages"].unsqueeze(-1) * live).sum() / live.sum()  # every ratio is 1 before an update
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)  # the reference is the policy: KL 0
    torch.testing.assert_close(penalised - loss, torch.tensor(coeff * (math.exp(0.1) - 1.1)), rtol=1e-3, atol=1e-6)
    stats = result["learners"]["default_policy"]
    assert 0.0 <= float(stats["kl_ref"]) < 0.1
    assert 0.0 <= float(stats["clipped_token_share"]) <= 1.0 and np.isfinite(float(stats["policy_loss"]))


@pytest.mark.parametrize("estimator", ["gae", "reinforce++"])
def test_env_runners_hold_inference_weights_only(ray_session, tiny_model_dir, tmp_path, estimator):
    """The runner's module acts: no KL reference copy; the learner's has it. With PPO + GAE the
    runner also holds the value head (synced) and sends each step's value; without a critic not."""
    cfg = tiny_run_config(
        tiny_model_dir, str(tmp_path), algorithm={"kl_ref_coeff": 0.1, "advantage_estimator": estimator}
    )
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    critic = estimator == "gae"
    try:
        runner = algo.env_runner.module
        learner = _learner_module(algo)
        assert runner.inference_only and not runner._ref and runner.runner_values == critic
        assert (runner.value_head is not None) == critic
        assert learner.value_head is not None and learner._ref
        synced = learner.get_state(inference_only=True)
        assert bool([k for k in synced if k.startswith("value_head")]) == critic
        assert set(synced) == set(runner.get_state())
        episodes = algo.env_runner.sample(num_timesteps=16, random_actions=False)
        assert all((Columns.VF_PREDS in e.extra_model_outputs) == critic for e in episodes)
        if critic:  # GAE on the runner's values == GAE on a full learner value pass
            without = copy.deepcopy(episodes)
            for e in without:
                del e.extra_model_outputs[Columns.VF_PREDS]
            rows_seen = []
            hook = learner.lm.register_forward_hook(lambda m, args, kw, out: rows_seen.append(kw["input_ids"].shape[0]),
                                                    with_kwargs=True)  # fmt: skip

            def targets(eps):
                rows_seen.clear()
                return learner_batch(algo, eps)[Postprocessing.VALUE_TARGETS], sum(rows_seen)

            assert any(not e.is_terminated for e in episodes)  # a truncated chunk needs its bootstrap value
            (fast, fast_rows), (slow, slow_rows) = targets(episodes), targets(without)
            hook.remove()
            torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
            assert 0 < fast_rows <= len(episodes) < slow_rows  # a prompt pass for bootstrap rows only
        algo.train()  # samples with the runner, learns, syncs back
        after = runner.get_state()
        new = learner.get_state(inference_only=True)
        assert all(np.array_equal(after[k], new[k]) for k in new)
    finally:
        algo.stop()
