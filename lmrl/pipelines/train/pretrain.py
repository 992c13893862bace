"""``lmrl pretrain``: a causal LM trained from text with Ray Train.

Text, JSONL or Parquet is read by Ray Data, tokenised as a stream (a
byte-level BPE trained on the corpus, or a given HF tokenizer), packed into
``data.max_length`` blocks, and split across ``resources.num_workers`` Ray
Train workers. The result, ``RUN_DIR/model``, is an HF directory that
``AutoModelForCausalLM.from_pretrained`` loads and that ``lmrl train`` takes as
``policy.model``.

For the small warm start that ``lmrl train`` runs in-process on random play
(``policy.pretrain_steps``), see :mod:`lmrl.pipelines.pretrain`.

Example:
    >>> from lmrl.pipelines.train.config import PretrainConfig
    >>> cfg = PretrainConfig.model_validate({"data": {"train": ["corpus.txt"]}, "training": {"steps": 50}})
    >>> run = pretrain(cfg)  # doctest: +SKIP
    >>> run / "model"  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from lmrl.pipelines.train.config import PretrainConfig
from lmrl.pipelines.train.job import run_job


def pretrain(cfg: PretrainConfig, resume: str | Path | None = None, run_dir: str | Path | None = None) -> Path:
    """Pretrains a causal LM; returns the run directory (the model is in ``model/``).

    Args:
        cfg: The pretrain config (for ``resume``: the run's own ``config.yaml``).
        resume: A run directory to continue from its latest checkpoint.
        run_dir: Where to write a new run (default: ``run.output_dir/run.name``).

    Raises:
        ConfigError, DataError: A bad config or data, before anything is written.
        RunError: The run directory is taken, or training failed for good.
    """
    return run_job(cfg, resume=resume, run_dir=run_dir)
