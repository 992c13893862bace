"""Translating lmrl's ``RunConfig`` into an RLlib algorithm config.

This is the one place that speaks RLlib's builder API. It also holds the
pieces RLlib needs from us: the env class RLlib instantiates on each runner
(a text env behind the token adapter), the callback that records episode
success, and the PPO learner with the optional KL penalty to the reference
(initial) weights.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import tree
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.evaluation.postprocessing import Postprocessing

from lmrl.envs.adapter import AdapterConfig, TokenizedEnv
from lmrl.errors import ConfigError
from lmrl.pipelines.config import RunConfig
from lmrl.policies.module import REF_LOGP, LMPolicyModule
from lmrl.policies.q_module import LMQModule

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
            from lmrl.pipelines.train.reward_wrapper import RewardModelWrapper

            env = RewardModelWrapper(env, **reward)
        super().__init__(env, _tokenizer(env_config["model_path"]), AdapterConfig(**env_config["adapter"]))
        # GRPO: (index in the vector env, group, base seed); see grouped_vector_env.
        self._group, self._episode, self._seeded_with = group, 0, None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._group is None:
            return super().reset(seed=seed, options=options)
        index, group, base = self._group
        # The vector env's seeded reset gives env i the seed s + i. RLlib resets with the same
        # seed at every sample() in complete_episodes mode: that must not replay the same starts.
        if seed is not None and seed != self._seeded_with:
            base, self._episode, self._seeded_with = seed - index, 0, seed
            self._group = (index, group, base)
        key = f"{base}/{group}/{self._episode}"
        self._episode += 1
        episode_seed = int(np.random.SeedSequence([base % 2**32, group, self._episode]).generate_state(1)[0])
        obs, info = super().reset(seed=episode_seed, options=options)
        return obs, {**info, GROUP_INFO: key}


#: Info key (at reset) naming an episode's GRPO group: episodes with the same key start alike.
GROUP_INFO = "lmrl_group"
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


def _set_module_state(module_id: str, state: dict[str, Any], env_runner: Any) -> None:
    env_runner.module[module_id].set_state(state)


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

    def on_train_result(self, *, algorithm, metrics_logger=None, result=None, **kwargs) -> None:
        """Self-play with snapshots: every ``snapshot_every`` iterations, the oldest snapshot takes the current weights."""
        mapping = algorithm.config.policy_mapping_fn
        plans = getattr(mapping, "snapshots", None)
        if not plans:
            return
        iteration = int(result["training_iteration"]) if result else algorithm.iteration
        for policy, plan in plans.items():
            if iteration % plan["every"]:
                continue
            slot = plan["modules"][(iteration // plan["every"] - 1) % len(plan["modules"])]
            weights = algorithm.learner_group.get_weights([policy])[policy]
            algorithm.learner_group.set_weights({slot: weights})
            # Straight into each runner's module: RLlib's sync_weights skips runners that already
            # hold the learner's current weights_seq_no, which they do right after training.
            algorithm.env_runner_group.foreach_env_runner(
                functools.partial(_set_module_state, slot, weights), local_env_runner=True, timeout_seconds=60.0
            )


class DropMaskedRows(ConnectorV2):
    """Learner connector: drops the rows that the loss mask excludes, after GAE.

    RLlib's PPO appends one artificial timestep to every episode so the value
    net can bootstrap, and masks it out of the loss. Once GAE has used it, the
    row only costs compute: every epoch would run the LM forward and backward
    on it for nothing. For one-step episodes (Arithmetic, SentimentSteer, each
    seat of Referential) that is half of every minibatch. The loss is a mean
    over unmasked rows, so dropping them leaves its value unchanged.

    RLlib standardises the advantages over all rows, the bootstrap rows
    included; they are standardised again here over the rows that train, so
    the policy gradient's baseline is the mean over real steps only.
    """

    def __init__(self, *args: Any, standardize: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.standardize = standardize

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        for mid, module_batch in list(batch.items()):
            mask = module_batch.get(Columns.LOSS_MASK)
            if mask is None:
                continue
            keep = torch.as_tensor(mask).bool()
            if bool(keep.all()):
                continue
            n, idx = keep.shape[0], torch.nonzero(keep).squeeze(-1)

            def take(x, n=n, idx=idx):
                if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == n:
                    return x[idx.to(x.device)]
                if isinstance(x, np.ndarray) and x.ndim > 0 and x.shape[0] == n:
                    return x[idx.cpu().numpy()]
                return x

            batch[mid] = kept = tree.map_structure(take, module_batch)
            adv = kept.get(Postprocessing.ADVANTAGES)
            if self.standardize and adv is not None and len(adv) > 1:
                std = adv.std(correction=0) if isinstance(adv, torch.Tensor) else adv.std()
                kept[Postprocessing.ADVANTAGES] = (adv - adv.mean()) / max(1e-4, float(std))
        return batch


class GroupAdvantages(ConnectorV2):
    """Learner connector (GRPO): each episode's return, normalised within its group.

    Runs after RLlib's GAE step and replaces its advantages. Episodes of one
    group (same :data:`GROUP_INFO` key) started from the same seed; every row
    of an episode gets ``(R - mean(R_group)) / (std(R_group) + 1e-4)``, as in
    GRPO (DeepSeekMath; TRL's ``GRPOTrainer``). An episode whose group has no
    other member in the batch gets 0.
    """

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, **kwargs):
        eps = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        returns = np.array([float(np.sum(e.get_rewards())) for e in eps])
        keys = [e.get_infos(0).get(GROUP_INFO) if e.t_started == 0 else None for e in eps]
        by_key: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key is not None:
                by_key.setdefault(key, []).append(i)
        per_episode = np.zeros(len(eps))
        for members in by_key.values():
            if len(members) > 1:
                r = returns[members]
                per_episode[members] = (r - r.mean()) / (r.std(ddof=1) + 1e-4)
        rows = np.repeat(per_episode, [len(e) for e in eps])
        for mid, module_batch in batch.items():
            adv = module_batch.get(Postprocessing.ADVANTAGES)
            if adv is None:
                continue
            if len(rows) != len(adv):
                raise RuntimeError(f"GRPO: {len(rows)} episode rows for {len(adv)} batch rows of module {mid}")
            module_batch[Postprocessing.ADVANTAGES] = (
                torch.as_tensor(rows, dtype=adv.dtype, device=adv.device) if isinstance(adv, torch.Tensor) else rows
            )
        return batch


class LMPPOLearner(PPOTorchLearner):
    """PPO with an optional KL penalty to the frozen reference policy.

    The penalty uses the non-negative k3 estimator of KL(pi || pi_ref) on the
    sampled actions, as in GRPO/TRL (http://joschu.net/blog/kl-approx.html):
    ``exp(ref - logp) - (ref - logp) - 1``. The learner batch leaves out the
    loss-masked bootstrap rows (:class:`DropMaskedRows`).
    """

    def build(self) -> None:
        super().build()
        if self._learner_connector is not None and self.config.add_default_connectors_to_learner_pipeline:
            grpo = self.config.learner_config_dict.get("advantage_estimator") == "grpo"
            if grpo:
                self._learner_connector.append(GroupAdvantages())
            self._learner_connector.append(DropMaskedRows(standardize=not grpo))

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        token_level = (
            config.learner_config_dict.get("importance_sampling_level") == "token"
            and getattr(module, "action_mode", None) == "generate"
        )
        if token_level:
            loss = self._token_level_loss(module_id, module, config, batch, fwd_out)
        else:
            loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        coeff = float(config.learner_config_dict.get("kl_ref_coeff", 0.0))
        if coeff > 0.0 and REF_LOGP in fwd_out:
            module = self.module[module_id].unwrapped()
            dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
            logp = dist.logp(batch[Columns.ACTIONS])
            delta = fwd_out[REF_LOGP] - logp
            kl = torch.exp(delta) - delta - 1.0
            mask = batch.get(Columns.LOSS_MASK)
            mean_kl = kl[mask].mean() if mask is not None else kl.mean()
            loss = loss + coeff * mean_kl
            self.metrics.log_value((module_id, "kl_ref"), mean_kl.detach(), window=1)
        return loss

    def _token_level_loss(self, module_id, module, config, batch, fwd_out):
        """PPO's loss with one importance ratio per generated token (generate mode).

        RLlib's PPO takes the ratio of whole-sequence likelihoods, which moves
        T times faster than a token's and so reaches the clip range sooner.
        Here each token up to the first EOS has its own clipped ratio, and the
        surrogate is averaged over all those tokens in the batch, as in TRL's
        GRPO and DAPO. The value and entropy terms are RLlib's.
        """
        from ray.rllib.algorithms.ppo.ppo import LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY
        from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY, VF_LOSS_KEY
        from ray.rllib.utils.torch_utils import explained_variance

        from lmrl.policies import lm_ops

        tokens = batch[Columns.ACTIONS].long()
        b, t = tokens.shape

        def token_logp(flat_logits):
            logp = torch.log_softmax(flat_logits.reshape(b, t, -1).float(), -1)
            return logp.gather(2, tokens.unsqueeze(-1))[..., 0]  # (B, T)

        live = (~lm_ops.done_before(tokens, module.eos_id)).float()
        rows = batch.get(Columns.LOSS_MASK)
        if rows is not None:
            live = live * rows.float().unsqueeze(-1)
        ratio = torch.exp(token_logp(fwd_out[Columns.ACTION_DIST_INPUTS]) - token_logp(batch[Columns.ACTION_DIST_INPUTS]))
        adv = batch[Postprocessing.ADVANTAGES].unsqueeze(-1)
        surrogate = torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - config.clip_param, 1 + config.clip_param))
        policy_loss = -(surrogate * live).sum() / live.sum().clamp(min=1.0)

        def row_mean(x):
            return x[rows].mean() if rows is not None else x.mean()

        entropy = row_mean(module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS]).entropy())
        zero = torch.tensor(0.0, device=policy_loss.device)
        values, vf_loss, vf_unclipped = zero, zero, zero
        if config.use_critic:
            values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
            squared = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
            vf_loss, vf_unclipped = row_mean(torch.clamp(squared, 0, config.vf_clip_param)), row_mean(squared)
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        self.metrics.log_dict(
            {
                POLICY_LOSS_KEY: policy_loss,
                VF_LOSS_KEY: vf_loss,
                "vf_loss_unclipped": vf_unclipped,
                LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY: explained_variance(batch[Postprocessing.VALUE_TARGETS], values)
                if config.use_critic
                else zero,
                ENTROPY_KEY: entropy,
                "clipped_token_share": ((ratio - 1.0).abs() > config.clip_param).float().mul(live).sum()
                / live.sum().clamp(min=1.0),
            },
            key=module_id,
            window=1,
        )
        return policy_loss + config.vf_loss_coeff * vf_loss - entropy_coeff * entropy


def adapter_config(cfg: RunConfig) -> AdapterConfig:
    """The adapter shapes implied by the policy section."""
    p = cfg.policy
    return AdapterConfig(
        action_mode=p.action_mode,
        max_prompt_tokens=p.max_prompt_tokens,
        max_new_tokens=p.max_new_tokens,
        max_candidates=p.max_candidates,
        max_candidate_tokens=p.max_candidate_tokens,
    )


def module_spec(cfg: RunConfig, model_path: str, obs_space: gym.Space, act_space: gym.Space) -> RLModuleSpec:
    """The RLModule spec for the LLM policy (or, for DQN, Q-function) loaded from ``model_path``."""
    a, p = cfg.algorithm, cfg.policy
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
            "critic": a.name != "PPO" or a.advantage_estimator == "gae",
        },
    )


def env_config(cfg: RunConfig, model_path: str) -> dict[str, Any]:
    """What every runner needs to build the tokenized env."""
    return {
        "env_id": cfg.env.id,
        "env_kwargs": dict(cfg.env.kwargs),
        "model_path": model_path,
        "adapter": adapter_config(cfg).to_dict(),
        "reward": cfg.reward.model_dump(mode="json"),
    }


def _algorithm_specific(cfg: RunConfig) -> AlgorithmConfig:
    """The algorithm's own config class with its own training settings."""
    a = cfg.algorithm
    common = {"lr": a.lr, "gamma": a.gamma, "grad_clip": a.grad_clip, "train_batch_size_per_learner": a.train_batch_size}
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
    from lmrl.pipelines.multiagent import (
        PolicyMapping,
        RLlibTextMultiAgentEnv,
        is_multiagent,
        resolve_mapping,
        snapshot_plan,
        sparring_plan,
    )

    env_cfg = env_config(cfg, model_path)
    multi = is_multiagent(cfg.env.id)
    if multi:
        from lmrl.envs.multiagent import make_aec

        to_llm, scripted, llm_policies = resolve_mapping(cfg, list(make_aec(cfg.env.id, **cfg.env.kwargs).possible_agents))
        snapshots = snapshot_plan(cfg, to_llm)
        frozen = [m for plan in snapshots.values() for m in plan["modules"]]
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
        .callbacks(SuccessCallback)
        .debugging(seed=cfg.run.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=100)
    )
