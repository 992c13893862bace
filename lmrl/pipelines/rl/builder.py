"""Translating lmrl's ``RunConfig`` into an RLlib algorithm config.

This is the one place that speaks RLlib's builder API. It also holds the
pieces RLlib needs from us: the env class RLlib instantiates on each runner
(a text env behind the token adapter, grouped for GRPO) and the callback that
records episode success. The PPO learner and its connectors live in
:mod:`lmrl.pipelines.rl.learner`; multi-agent mapping and snapshots in
:mod:`lmrl.pipelines.rl.multiagent`.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from lmrl.envs.adapter import AdapterConfig, TokenizedEnv
from lmrl.envs.base import HELD_OUT_SEED
from lmrl.errors import ConfigError
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.policy_setup import adapter_config, is_pretrained, learning_rate, lora_settings
from lmrl.pipelines.rl.learner import GROUP_INFO, DropMaskedRows, GroupAdvantages, LMPPOLearner
from lmrl.policies.module import LMPolicyModule
from lmrl.policies.q_module import LMQModule

__all__ = [
    "GROUP_INFO",
    "adapter_config",
    "DropMaskedRows",
    "GroupAdvantages",
    "LMPPOLearner",
    "RLlibTextEnv",
    "SuccessCallback",
    "build_algorithm_config",
]

SUCCESS_METRIC = "success_rate"


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


class RLlibTextEnv(TokenizedEnv):
    """The env RLlib builds on every runner: ``make(env_id)`` behind the token adapter.

    ``env_config`` keys: ``env_id``, ``env_kwargs``, ``model_path`` (tokenizer
    location) and ``adapter`` (an :class:`AdapterConfig` as a dict).
    """

    def __init__(self, env_config: dict[str, Any], group: tuple[int, int, int] | None = None) -> None:
        import lmrl.envs

        env = lmrl.envs.make(env_config["env_id"], **env_config.get("env_kwargs", {}))
        reward = env_config.get("reward") or {}
        if reward.get("model"):  # RLHF: a reward model scores each action
            from lmrl.pipelines.rl.reward_wrapper import RewardModelWrapper

            env = RewardModelWrapper(env, **reward)
        super().__init__(env, _tokenizer(env_config["model_path"]), AdapterConfig(**env_config["adapter"]))
        # GRPO (see grouped_vector_env): this env's index in the vector env, its group, the
        # group's base seed, and its episode count.
        self._grouped = group is not None
        self._index, self._group, self._base = group or (0, 0, 0)
        self._episode, self._seeded_with = 0, None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if not self._grouped:
            return super().reset(seed=seed, options=options)
        # The vector env's seeded reset gives env i the seed s + i. RLlib resets with the same
        # seed at every sample() in complete_episodes mode: that must not replay the same starts.
        if seed is not None and seed != self._seeded_with:
            self._base, self._episode, self._seeded_with = seed - self._index, 0, seed
        episode = self._episode
        self._episode += 1
        episode_seed = int(np.random.SeedSequence([self._base % 2**32, self._group, episode]).generate_state(1)[0])
        # Seeds from HELD_OUT_SEED on are evaluation's (a suite's test fold or held-out dataset).
        if getattr(self.env.unwrapped, "held_out_split", False):
            episode_seed %= HELD_OUT_SEED
        obs, info = super().reset(seed=episode_seed, options=options)
        return obs, {**info, GROUP_INFO: f"{self._base}/{self._group}/{episode}"}


#: The name :func:`grouped_vector_env` is registered under with Ray.
GROUPED_ENV = "lmrl-grouped-text-env"


def grouped_vector_env(env_config: dict[str, Any]) -> gym.Env:
    """The env callable RLlib builds: a text env, or (GRPO) a vector of them in start-alike groups.

    With ``env_config["group_size"]`` and RLlib's ``num_envs`` (vector entry point), sub-env
    ``i`` joins group ``i // group_size``; every episode of a group starts from one seed, drawn
    per group and episode count, so a group's episodes answer the same prompt.
    """
    n, size = env_config.get("num_envs"), env_config.get("group_size")
    if n is None or not size:
        return RLlibTextEnv(env_config)
    config = {k: v for k, v in dict(env_config).items() if k != "num_envs"}
    base = int(np.random.SeedSequence().entropy % 2**31)  # replaced by the first seeded reset
    fns = [functools.partial(RLlibTextEnv, config, (i, i // size, base)) for i in range(int(n))]
    return gym.vector.SyncVectorEnv(fns)


class SuccessCallback(RLlibCallback):
    """Logs whether each finished episode reached its goal (``info["success"]``)."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        if metrics_logger is None:
            return
        if hasattr(episode, "agent_episodes"):  # multi-agent: per agent, and their mean
            flags = {}
            for agent, agent_episode in episode.agent_episodes.items():
                infos = agent_episode.get_infos()
                flags[agent] = bool(infos[-1].get("success", False)) if len(infos) else False
                metrics_logger.log_value(f"{SUCCESS_METRIC}/{agent}", float(flags[agent]), reduce="mean", window=100)
            success = sum(flags.values()) / len(flags) if flags else 0.0
        else:
            infos = episode.get_infos()
            success = bool(infos[-1].get("success", False)) if len(infos) else False
        metrics_logger.log_value(SUCCESS_METRIC, float(success), reduce="mean", window=100)



def module_spec(cfg: RunConfig, model_path: str, obs_space: gym.Space, act_space: gym.Space) -> RLModuleSpec:
    """The RLModule spec for the LLM policy (or, for DQN, Q-function) loaded from ``model_path``."""
    a, p = cfg.algorithm, cfg.policy
    adapter = adapter_config(cfg)
    if a.name == "DQN":
        return RLModuleSpec(
            module_class=LMQModule,
            observation_space=obs_space,
            action_space=act_space,
            model_config={
                "model_path": model_path,
                "q_head_hidden": a.q_head_hidden,
                "double_q": a.double_q,
                "epsilon": (a.epsilon_start, a.epsilon_end, a.epsilon_timesteps),
                "init_seed": p.init_seed,
            },
        )
    return RLModuleSpec(
        module_class=LMPolicyModule,
        observation_space=obs_space,
        action_space=act_space,
        model_config={
            "model_path": model_path,
            "action_mode": p.action_mode,
            "max_new_tokens": p.max_new_tokens,
            "temperature": p.temperature,
            "value_head_hidden": p.value_head_hidden,
            "init_seed": p.init_seed,
            "kl_ref": a.kl_ref_coeff > 0.0,
            "critic": a.advantage_estimator == "gae",  # non-gae estimators are PPO-only (config check)
            # PPO's GAE reads the values the env runners computed while acting (same weights:
            # on-policy, synced after every update) instead of a second prompt pass on the learner.
            # APPO keeps the learner's values: its runners may act on older weights.
            "runner_values": a.name == "PPO" and a.advantage_estimator == "gae",
            "lora": lora_settings(cfg),
            "choice_scoring": adapter.choice_scoring,
            "choice_temperature": adapter.choice_temperature,
            "value_norm": is_pretrained(cfg),
            "autocast": p.autocast,
            "gradient_checkpointing": p.gradient_checkpointing,
        },
    )


def env_config(cfg: RunConfig, model_path: str) -> dict[str, Any]:
    """What every runner needs to build the tokenized env.

    ``kind`` is the env's kind in the catalog (``"single"``, ``"aec"`` or ``"parallel"``),
    read once here: it picks the RLlib env class for the whole run.
    """
    import lmrl.envs

    return {
        "env_id": cfg.env.id,
        "kind": lmrl.envs.env_kind(cfg.env.id),
        "env_kwargs": dict(cfg.env.kwargs),
        "model_path": model_path,
        "adapter": adapter_config(cfg).to_dict(),
        "reward": cfg.reward.model_dump(mode="json"),
    }


def _algorithm_specific(cfg: RunConfig) -> AlgorithmConfig:
    """The algorithm's own config class with its own training settings."""
    a = cfg.algorithm
    common = {"lr": learning_rate(cfg), "gamma": a.gamma, "grad_clip": a.grad_clip, "train_batch_size_per_learner": a.train_batch_size}
    if a.name == "PPO":
        critic = a.advantage_estimator == "gae"
        return (
            PPOConfig()
            .training(
                **common,
                # Critic-free: the module's values are 0, so GAE with lambda 1 gives each
                # step's discounted return; RLlib then normalises advantages over the batch.
                use_critic=critic,
                lambda_=a.lambda_ if critic else 1.0,
                clip_param=a.clip_param,
                vf_loss_coeff=a.vf_loss_coeff,
                vf_clip_param=a.vf_clip_param,
                entropy_coeff=a.entropy_coeff,
                minibatch_size=a.minibatch_size,
                num_epochs=a.num_epochs,
                use_kl_loss=False,
            )
            # An iteration whose env runners all died sampled nothing; without this it would
            # still count (no update, null metrics). With it, RLlib restores the runners and
            # samples again within the same iteration.
            .reporting(min_sample_timesteps_per_iteration=1)
            .learners(
                learner_class=LMPPOLearner,
                learner_config_dict={
                    "kl_ref_coeff": a.kl_ref_coeff,
                    "advantage_estimator": a.advantage_estimator,
                    "importance_sampling_level": a.importance_sampling_level,
                },
            )
        )
    if a.name == "APPO":
        from ray.rllib.algorithms.appo import APPOConfig

        return APPOConfig().training(
            **common,
            lambda_=a.lambda_,
            clip_param=a.clip_param,
            vf_loss_coeff=a.vf_loss_coeff,
            entropy_coeff=a.entropy_coeff,
            minibatch_size=a.minibatch_size,
            num_epochs=a.num_epochs,
            use_kl_loss=False,
            target_network_update_freq=max(1, a.target_update_freq // a.train_batch_size),
        )
    from ray.rllib.algorithms.dqn import DQNConfig

    # Same meaning as for PPO: each iteration samples train_batch_size env steps, then makes
    # num_epochs * train_batch_size / minibatch_size updates on replayed minibatches.
    common["train_batch_size_per_learner"] = a.minibatch_size
    return DQNConfig().training(
        **common,
        training_intensity=float(a.num_epochs),
        replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": a.replay_capacity},
        target_network_update_freq=a.target_update_freq,
        double_q=a.double_q,
        dueling=False,
        num_atoms=1,
        n_step=a.n_step,
        num_steps_sampled_before_learning_starts=a.train_batch_size,
        epsilon=[(0, a.epsilon_start), (a.epsilon_timesteps, a.epsilon_end)],
    )


def build_algorithm_config(cfg: RunConfig, model_path: str) -> AlgorithmConfig:
    """Our ``RunConfig`` -> an RLlib ``PPOConfig``/``APPOConfig``/``DQNConfig`` (new API stack).

    Args:
        cfg: The validated run config.
        model_path: Local HF directory with the initial model and tokenizer.
    """
    from lmrl.pipelines.rl.multiagent import (
        PolicyMapping,
        RLlibTextMultiAgentEnv,
        SnapshotCallback,
        resolve_mapping,
        snapshot_plan,
        sparring_plan,
    )

    env_cfg = env_config(cfg, model_path)
    multi = env_cfg["kind"] != "single"  # RLlibTextMultiAgentEnv plays AEC and Parallel envs alike
    callbacks: list[type[RLlibCallback]] = [SuccessCallback]
    if multi:
        import lmrl.envs

        to_llm, scripted, llm_policies = resolve_mapping(cfg, list(lmrl.envs.make(cfg.env.id, **cfg.env.kwargs).possible_agents))
        snapshots = snapshot_plan(cfg, to_llm)
        frozen = [m for plan in snapshots.values() for m in plan["modules"]]
        if snapshots:
            callbacks.append(SnapshotCallback)
        env_cfg["scripted"] = scripted
        env_cfg["sparring"] = sparring_plan(cfg, to_llm)
        env_cls = RLlibTextMultiAgentEnv
        probe = env_cls(env_cfg)
        first = probe.possible_agents[0]
        obs_space, act_space = probe.observation_spaces[first], probe.action_spaces[first]
    else:
        env_cls = RLlibTextEnv
        probe = RLlibTextEnv(env_cfg)
        obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    grpo = cfg.algorithm.advantage_estimator == "grpo"
    if grpo:
        if multi:
            raise ConfigError(
                f"algorithm.advantage_estimator grpo needs a single-agent env, got multi-agent `{cfg.env.id}`; "
                "use gae or reinforce++"
            )
        from ray.tune.registry import register_env

        env_cfg["group_size"] = cfg.algorithm.group_size
        register_env(GROUPED_ENV, grouped_vector_env)  # RLlib takes an env class or a registered name
        env_cls = GROUPED_ENV
    a, r = cfg.algorithm, cfg.resources
    n_runners = max(r.num_env_runners, 1)
    fragment = max(1, a.train_batch_size // (n_runners * r.num_envs_per_env_runner))
    algo = _algorithm_specific(cfg)
    if multi:
        from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec

        spec = module_spec(cfg, model_path, obs_space, act_space)
        algo = algo.environment(env_cls, env_config=env_cfg).multi_agent(
            policies=set(llm_policies) | set(frozen),
            policy_mapping_fn=PolicyMapping(to_llm, snapshots),
            policies_to_train=llm_policies,  # snapshots only play
        ).rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={p: spec for p in [*llm_policies, *frozen]}))
    else:
        algo = algo.environment(
            env_cls, env_config=env_cfg, observation_space=obs_space, action_space=act_space
        ).rl_module(rl_module_spec=module_spec(cfg, model_path, obs_space, act_space))
    return (
        algo
        .env_runners(
            num_env_runners=r.num_env_runners,
            num_envs_per_env_runner=r.num_envs_per_env_runner,
            num_cpus_per_env_runner=r.num_cpus_per_env_runner,
            rollout_fragment_length=fragment,
            # GRPO: lmrl builds the vector env (start-alike groups); whole episodes, so groups are whole.
            gym_env_vectorize_mode="vector_entry_point" if grpo else "sync",
            batch_mode="complete_episodes" if grpo else "truncate_episodes",
        )
        .learners(num_learners=r.num_learners, num_gpus_per_learner=r.num_gpus_per_learner)
        # A dead env runner (killed, OOM) is restarted by Ray and gets the learner's weights.
        .fault_tolerance(restart_failed_env_runners=True)
        .callbacks(callbacks)
        .debugging(seed=cfg.run.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=100)
    )
