"""The typed run config: ``RunConfig(env, policy, algorithm, resources, run)``.

Every section forbids unknown keys, so a typo fails loudly. Cross-field checks
raise with the actual values, in the manner of TRL's ``GRPOConfig``. Loading
from YAML with ``--set`` overrides lives in :mod:`lmrl.platform.config`; this
module only defines and validates the schema, so pipelines can use it
without importing the platform layer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Names of the randomly initialised presets (lmrl.policies.lm.PRESETS; not imported here: torch).
PRESET_NAMES: tuple[str, ...] = ("tiny", "small")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvConfig(_Section):
    """Which text env to train on."""

    id: str = Field("lmrl/Maze-v0", description="Registered env id, e.g. lmrl/Maze-v0.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the env constructor.")


class LoraSection(_Section):
    """LoRA adapters (``peft``) on the policy's LM: only they and the value head train."""

    enabled: bool | Literal["auto"] = Field(
        "auto", description="auto: on for pretrained models (catalog names, directories, hub ids), off for presets."
    )
    r: int = Field(8, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(16.0, gt=0.0, description="LoRA scaling numerator (scale = alpha / r).")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names to adapt (e.g. [q_proj, v_proj]) or all-linear (every linear layer but the LM head).",
    )

    @model_validator(mode="after")
    def _check_targets(self) -> LoraSection:
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError("policy.lora.target_modules is empty; name modules (e.g. [q_proj, v_proj]) or use all-linear")
        return self


class PolicyConfig(_Section):
    """The LLM-backed policy."""

    model: str = Field(
        "tiny",
        description="A preset name (tiny, small), a model catalog name (lmrl models list), "
        "a local HF model directory, or a hub id.",
    )
    lora: LoraSection = Field(default_factory=LoraSection)
    chat: bool | Literal["auto"] = Field(
        "auto",
        description="Render observations through the model's chat template (a system message from the "
        "env's documentation, the observation as the user turn). auto: when the tokenizer has one.",
    )
    multi_turn: bool | Literal["auto"] = Field(
        "auto",
        description="Chat prompts: keep the episode's earlier turns in the prompt as user/assistant turns, "
        "the assistant turns as the exact token ids sampled (the oldest leave first when the prompt is "
        "full). auto: on with chat prompts in dialogue envs (TextEnv.dialogue, e.g. lmrl/CustomerSupport-v0).",
    )
    choice_scoring: Literal["mean", "sum", "auto"] = Field(
        "auto",
        description="Choose mode: score a candidate by the mean (length-normalised, GLAM) or the sum of its "
        "token log-probs. auto: mean for presets, sum for pretrained models.",
    )
    choice_temperature: float | None = Field(
        None,
        gt=0.0,
        description="Choose mode: the candidate scores are divided by this before the softmax "
        "(null: policy.temperature for presets, calibrated default for pretrained models).",
    )
    autocast: Literal["none", "bf16"] = Field(
        "none", description="bf16 autocast of the LM's forward passes (CPU and GPU); weights stay fp32."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass (less memory).")
    action_mode: Literal["choose", "generate"] = Field(
        "choose",
        description="choose: score the env's admissible actions; generate: sample free text.",
    )
    max_prompt_tokens: int = Field(96, ge=1, le=4096, description="Prompt tokens kept (most recent).")
    max_new_tokens: int = Field(6, ge=1, le=256, description="Generate mode: tokens per action.")
    max_candidates: int = Field(8, ge=2, le=64, description="Choose mode: admissible actions scored.")
    max_candidate_tokens: int = Field(8, ge=1, le=64, description="Choose mode: tokens per candidate.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature (training and sampled eval).")
    value_head_hidden: int = Field(0, ge=0, description="Hidden width of the value head MLP (0: linear).")
    init_seed: int = Field(0, description="Seed for randomly initialised presets and the value head.")
    pretrain_steps: int = Field(
        0,
        ge=0,
        description="Presets only: causal-LM steps on the random agent's play before RL "
        "(teaches the action format, not the task; useful in generate mode).",
    )


class AlgorithmConfig(_Section):
    """The RL algorithm and its hyper-parameters."""

    name: Literal["PPO", "APPO", "DQN"] = Field(
        "PPO", description="RLlib algorithm: PPO, APPO (asynchronous sampling) or DQN (choose mode)."
    )
    lr: float = Field(1e-3, gt=0.0)
    gamma: float = Field(0.95, ge=0.0, le=1.0)
    lambda_: float = Field(0.95, ge=0.0, le=1.0, alias="lambda")
    clip_param: float = Field(0.2, gt=0.0)
    vf_loss_coeff: float = Field(0.5, ge=0.0)
    vf_clip_param: float = Field(10.0, gt=0.0)
    entropy_coeff: float = Field(0.01, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    train_batch_size: int = Field(512, ge=1, description="Env steps per training iteration.")
    minibatch_size: int = Field(128, ge=1)
    num_epochs: int = Field(4, ge=1)
    kl_ref_coeff: float = Field(
        0.0,
        ge=0.0,
        description="Weight of the KL penalty to the initial (reference) weights; 0 disables it.",
    )
    advantage_estimator: Literal["gae", "reinforce++", "grpo"] = Field(
        "gae",
        description=(
            "PPO: 'gae' (value head + GAE); 'reinforce++' (critic-free: each step's discounted "
            "return, normalised over the batch); 'grpo' (critic-free: group_size episodes start "
            "from the same seed, and each episode's return is normalised within its group)."
        ),
    )
    importance_sampling_level: Literal["sequence", "token"] = Field(
        "sequence",
        description=(
            "PPO, generate mode: one clipped importance ratio per action (the whole sequence's "
            "likelihood ratio, RLlib's PPO) or per generated token (as TRL's GRPO; the KL penalty "
            "kl_ref_coeff is then per token too, averaged over tokens)."
        ),
    )
    group_size: int = Field(
        8, ge=2, description="GRPO: episodes per group (same start); must divide resources.num_envs_per_env_runner."
    )
    # DQN only.
    replay_capacity: int = Field(50_000, ge=1, description="DQN: replay buffer size in env steps.")
    target_update_freq: int = Field(500, ge=1, description="DQN/APPO: env steps between target-network syncs.")
    epsilon_start: float = Field(1.0, ge=0.0, le=1.0, description="DQN: initial exploration rate.")
    epsilon_end: float = Field(0.05, ge=0.0, le=1.0, description="DQN: final exploration rate.")
    epsilon_timesteps: int = Field(10_000, ge=1, description="DQN: env steps over which epsilon decays.")
    double_q: bool = Field(True, description="DQN: double Q-learning.")
    n_step: int = Field(1, ge=1, description="DQN: n-step returns.")
    q_head_hidden: int = Field(64, ge=1, description="DQN: width of the Q-head MLP.")

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _check_batches(self) -> AlgorithmConfig:
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(
                f"algorithm.minibatch_size ({self.minibatch_size}) must be <= "
                f"algorithm.train_batch_size ({self.train_batch_size}); "
                "lower minibatch_size or raise train_batch_size"
            )
        if self.name != "PPO" and self.kl_ref_coeff > 0.0:
            raise ValueError(
                f"algorithm.kl_ref_coeff ({self.kl_ref_coeff}) is supported with PPO only, "
                f"got algorithm.name {self.name}; set algorithm.kl_ref_coeff=0 or use PPO"
            )
        if self.name != "PPO" and self.importance_sampling_level != "sequence":
            raise ValueError(
                f"algorithm.importance_sampling_level {self.importance_sampling_level!r} is supported with PPO "
                f"only, got algorithm.name {self.name}; remove algorithm.importance_sampling_level or use PPO"
            )
        if self.name != "PPO" and self.advantage_estimator != "gae":
            raise ValueError(
                f"algorithm.advantage_estimator {self.advantage_estimator!r} is supported with PPO only, "
                f"got algorithm.name {self.name}; remove algorithm.advantage_estimator or use PPO"
            )
        return self


class ResourcesConfig(_Section):
    """Where the work runs."""

    num_env_runners: int = Field(1, ge=0, description="Remote sampling actors (0: sample in the driver).")
    num_envs_per_env_runner: int = Field(8, ge=1, description="Envs batched per runner.")
    num_cpus_per_env_runner: float = Field(1.0, gt=0.0)
    num_learners: int = Field(0, ge=0, description="Remote learners (0: learn in the driver).")
    num_gpus_per_learner: float = Field(0.0, ge=0.0)
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray (default: all).")
    address: str | None = Field(None, description="Ray cluster address; None starts a local Ray.")


class StopConfig(_Section):
    """When a run stops (the first condition reached)."""

    iterations: int | None = Field(20, ge=1)
    timesteps: int | None = Field(None, ge=1)
    time_s: float | None = Field(None, gt=0.0)
    success_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="Stop once the training success rate reaches this."
    )


class RunSection(_Section):
    """Run bookkeeping: seed, output, checkpoints, stop conditions."""

    name: str | None = Field(None, description="Run directory name (default: env and time).")
    output_dir: str = Field("runs", description="Parent directory of run directories.")
    seed: int = 0
    stop: StopConfig = Field(default_factory=StopConfig)
    checkpoint_every: int = Field(5, ge=1, description="Iterations between RLlib checkpoints.")
    eval_episodes: int = Field(20, ge=0, description="Greedy episodes evaluated after training.")
    progress: bool = Field(True, description="Show the rich progress display.")


class RewardConfig(_Section):
    """Where the reward comes from: the env's own, or a reward model (RLHF)."""

    model: str | None = Field(
        None,
        description="A reward-model directory (lmrl finetune, task reward_model); null: the env's reward.",
    )
    mode: Literal["replace", "add"] = Field(
        "replace", description="replace the env's reward with the model's score, or add the score to it."
    )
    scale: float = Field(1.0, description="Multiplier of the model's score.")


class PolicySpecConfig(_Section):
    """One entry of ``policies`` (multi-agent envs): an LLM policy or a fixed scripted one."""

    scripted: Literal["random", "expert"] | None = Field(
        None, description="null: an LLM policy built from the `policy` section; random/expert: a fixed opponent."
    )
    snapshots: int = Field(
        0,
        ge=0,
        description=(
            "Self-play against past selves: how many frozen past copies of this LLM policy to keep "
            "as opponents (0: always play the current policy)."
        ),
    )
    snapshot_every: int = Field(5, ge=1, description="Training iterations between snapshots (oldest replaced).")
    snapshot_games: float = Field(
        0.5, ge=0.0, le=1.0, description="Share of games in which one seat is played by a random snapshot."
    )
    sparring: Literal["random", "expert"] | None = Field(
        None,
        description=(
            "Self-play with a scripted sparring partner: in sparring_games of the games, one seat "
            "(drawn at random) is played by this scripted agent instead."
        ),
    )
    sparring_games: float = Field(0.25, ge=0.0, le=1.0, description="Share of games with the sparring partner.")

    @model_validator(mode="after")
    def _check_self_play_options(self) -> PolicySpecConfig:
        for name, on in (("snapshots", self.snapshots), ("sparring", self.sparring)):
            if on and self.scripted is not None:
                raise ValueError(
                    f"{name} ({on!r}) applies to LLM policies only, not to a scripted "
                    f"{self.scripted!r} policy; remove {name} or scripted"
                )
        return self


class WarmStartConfig(_Section):
    """Expert demos -> behaviour cloning (SFT on Ray Train) -> PPO from the cloned model.

    ``lmrl train`` runs this chain when ``enabled``; ``lmrl quickstart`` always does (with its own
    defaults unless this section is enabled). The demos and the SFT run go to
    ``run.output_dir/<run.name>-warm``; PPO then starts from the SFT model.
    """

    enabled: bool = Field(False, description="Run expert demos -> SFT before PPO.")
    demo_episodes: int = Field(200, ge=1, description="Expert episodes collected for SFT.")
    demo_seed: int = Field(20_000, description="Seed of the first demo episode (clear of eval seeds).")
    finetune: dict[str, Any] = Field(
        default_factory=dict,
        description="A finetune config (lmrl finetune's schema), merged over the quickstart's "
        "(task sft, model.preset tiny, 300 steps at lr 3e-3); data.train is set to the demos.",
    )
    ppo_iterations: int | None = Field(
        20, ge=1, description="Cap on PPO iterations after SFT (null: run.stop.iterations)."
    )
    ppo_lr: float | None = Field(
        3e-4, gt=0.0, description="PPO lr after SFT unless algorithm.lr is set (null: algorithm.lr)."
    )


class RunConfig(_Section):
    """A whole training run.

    Example:
        >>> cfg = RunConfig.model_validate({"env": {"id": "lmrl/Maze-v0"}})
        >>> cfg.policy.action_mode
        'choose'
    """

    env: EnvConfig = Field(default_factory=EnvConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    run: RunSection = Field(default_factory=RunSection)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    policies: dict[str, PolicySpecConfig] = Field(
        default_factory=dict, description="Multi-agent envs: policy names (default: one shared LLM policy)."
    )
    policy_mapping: dict[str, str] = Field(
        default_factory=dict, description="Multi-agent envs: agent id -> policy name."
    )
    warm_start: WarmStartConfig = Field(
        default_factory=WarmStartConfig, description="Expert demos -> SFT -> PPO (off by default)."
    )

    @model_validator(mode="after")
    def _check_grpo_groups(self) -> RunConfig:
        a, n = self.algorithm, self.resources.num_envs_per_env_runner
        if a.advantage_estimator == "grpo" and n % a.group_size:
            raise ValueError(
                f"algorithm.group_size ({a.group_size}) must divide resources.num_envs_per_env_runner ({n}): "
                "each env runner samples whole groups; e.g. set num_envs_per_env_runner to "
                f"{a.group_size * max(1, round(n / a.group_size))}"
            )
        return self

    @model_validator(mode="after")
    def _check_algorithm_mode(self) -> RunConfig:
        if self.algorithm.name == "DQN" and self.policy.lora.enabled is True:
            raise ValueError(
                "policy.lora.enabled (true) is supported with PPO and APPO only, got algorithm.name DQN; "
                "set policy.lora.enabled=false or use PPO"
            )
        if self.algorithm.name == "DQN" and self.policy.action_mode != "choose":
            raise ValueError(
                f"algorithm.name DQN needs policy.action_mode choose (one Q-value per admissible action), "
                f"got {self.policy.action_mode}; use PPO or APPO for generate mode"
            )
        return self
