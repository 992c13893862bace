"""``lmrl finetune``: supervised fine-tuning and reward models with Ray Train.

``task: sft`` trains a causal LM on prompt/response rows (or chat
``messages``) with the loss on the response tokens only -- behaviour cloning
when the rows are expert demos from ``lmrl data collect``, whose prompts are
the policy's own prompt format, so the result acts at once as an lmrl policy.

``task: reward_model`` trains ``AutoModelForSequenceClassification`` with
one score: on ``label`` rows (0..1, binary cross-entropy) or on
``chosen``/``rejected`` pairs (Bradley-Terry). The result is the model a
run config names in ``reward: {model: DIR}``.

Both use the same trainer skeleton, checkpoints and ``--resume`` as
:mod:`lmrl.pipelines.train.pretrain`.

Example:
    >>> from lmrl.pipelines.train.config import FinetuneConfig
    >>> cfg = FinetuneConfig.model_validate({"task": "sft", "data": {"train": "demos.parquet"}})
    >>> run = finetune(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from lmrl.pipelines.train.config import FinetuneConfig
from lmrl.pipelines.train.job import run_job


def finetune(cfg: FinetuneConfig, resume: str | Path | None = None, run_dir: str | Path | None = None) -> Path:
    """Fine-tunes (``sft``) or trains a reward model; returns the run directory.

    Args:
        cfg: The finetune config (for ``resume``: the run's own ``config.yaml``).
        resume: A run directory to continue from its latest checkpoint.
        run_dir: Where to write a new run (default: ``run.output_dir/run.name``).

    Raises:
        ConfigError, DataError: A bad config or data, before anything is written.
        RunError: The run directory is taken, or training failed for good.
    """
    return run_job(cfg, resume=resume, run_dir=run_dir)
