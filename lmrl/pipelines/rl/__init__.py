"""RL with RLlib: what ``lmrl train`` runs, from a run config to an exported policy.

- :mod:`~lmrl.pipelines.rl.loop`: the run (``train``): initial model, RLlib iterations with
  progress, metrics and checkpoints, then the learning curve, the export and the evaluation.
- :mod:`~lmrl.pipelines.rl.preset_pretrain`: a tiny preset's warm start on the random agent's
  play, before RL (``policy.pretrain_steps``; single process).
- :mod:`~lmrl.pipelines.rl.builder`: ``RunConfig`` -> RLlib algorithm config (PPO, APPO, DQN),
  the env class RLlib makes on each runner, the success callback.
- :mod:`~lmrl.pipelines.rl.learner`: the PPO learner (KL to the reference, token-level ratios)
  and its learner connectors (masked bootstrap rows, GRPO group advantages).
- :mod:`~lmrl.pipelines.rl.multiagent`: PettingZoo envs through RLlib's multi-agent API: seat
  mapping, scripted opponents, self-play snapshots.
- :mod:`~lmrl.pipelines.rl.reward_wrapper`: a reward model (from ``lmrl finetune``) as an env's
  reward (RLHF).

Nothing here is imported by ``import lmrl``; RLlib is imported by the modules that need it.
"""
