"""Ray Train pipelines: pretraining, fine-tuning (SFT, reward models), demo collection.

- :mod:`~lmrl.pipelines.train.config`: the ``PretrainConfig`` / ``FinetuneConfig`` schemas.
- :mod:`~lmrl.pipelines.train.data`: files -> validated rows -> token arrays (driver and Ray Data).
- :mod:`~lmrl.pipelines.train.loop`: the ``TorchTrainer`` loop every task shares.
- :mod:`~lmrl.pipelines.train.job`: the entry point (``run_job``, for pretrain and finetune
  alike): validate, prepare, train, write ``model/``.
- :mod:`~lmrl.pipelines.train.faults`: ``LMRL_TRAIN_INJECT_FAULT``, a worker that dies on purpose.
- :mod:`~lmrl.pipelines.train.collect`: episodes of an agent as Parquet (``lmrl data collect``).
- :mod:`~lmrl.pipelines.train.reward_wrapper`: a reward model as an env's reward (RLHF).

Nothing here is imported by ``import lmrl``; each module imports torch and Ray when used.
"""
