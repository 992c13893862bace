"""LM training on Ray Train: pretraining, fine-tuning (SFT, reward models), demo collection.

What ``lmrl pretrain``, ``lmrl finetune`` and ``lmrl data collect`` run; each writes a model
directory that ``lmrl train`` (:mod:`lmrl.pipelines.rl`) starts from or scores with.

- :mod:`~lmrl.pipelines.lm_train.config`: the ``PretrainConfig`` / ``FinetuneConfig`` schemas.
- :mod:`~lmrl.pipelines.lm_train.data`: files -> validated rows -> token arrays (driver and
  Ray Data).
- :mod:`~lmrl.pipelines.lm_train.loop`: the ``TorchTrainer`` loop every task shares.
- :mod:`~lmrl.pipelines.lm_train.job`: the entry point (``run_job``, for pretrain and finetune
  alike): validate, prepare, train, write ``model/``.
- :mod:`~lmrl.pipelines.lm_train.faults`: ``LMRL_TRAIN_INJECT_FAULT``, a worker that dies on
  purpose.
- :mod:`~lmrl.pipelines.lm_train.collect`: episodes of an agent as Parquet (``lmrl data collect``).
- :mod:`~lmrl.pipelines.lm_train.rl_format`: demo rows in the prompt format an RL policy acts in
  (``lmrl data collect --model/--like``; chat prompts for pretrained models).

A reward model becomes an env's reward in RL: :mod:`lmrl.pipelines.rl.reward_wrapper`.

Nothing here is imported by ``import lmrl``; each module imports torch and Ray when used.
"""
