"""Typed configs of ``lmrl pretrain`` and ``lmrl finetune``.

Both share one shape, nested by concern::

    data        where the text is and how it becomes token sequences
    tokenizer   an existing HF tokenizer, or a byte-level BPE trained on the data
    model       a size preset, an HF config, or weights to start from
    training    optimiser, schedule, batches, evaluation and checkpoints
    resources   Ray Train workers (CPU/gloo or GPU/NCCL) and fault tolerance
    run         run directory and display

``finetune`` adds ``task: sft | reward_model``, the column names of its data, and
``lora`` (sft from pretrained weights: only a LoRA adapter trains, merged at the end).
Every section forbids unknown keys; cross-field checks raise with the values.
YAML loading lives in :func:`lmrl.platform.config.load_config_as`.

Example:
    >>> cfg = PretrainConfig.model_validate({"data": {"train": ["corpus.txt"]}})
    >>> cfg.training.steps, cfg.resources.num_workers
    (200, 2)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _DataBase(_Section):
    train: list[str] = Field(
        default_factory=list,
        description="Training files or globs: .txt (one document per line), .jsonl or .parquet.",
    )
    eval: list[str] = Field(
        default_factory=list, description="Held-out files; empty: hold out eval_fraction of train."
    )
    eval_fraction: float = Field(
        0.05, ge=0.0, lt=1.0, description="Share of train rows held out (by a hash of their text)."
    )
    format: Literal["auto", "text", "jsonl", "parquet"] = Field(
        "auto", description="File format; auto: from the file extension."
    )
    max_length: int = Field(128, ge=2, description="Tokens per training sequence (the context).")
    shuffle_buffer: int = Field(
        1000, ge=0, description="Rows shuffled locally per worker (seeded per epoch); 0: file order."
    )

    _listify = field_validator("train", "eval", mode="before")(_as_list)


class PretrainData(_DataBase):
    """Pretraining text."""

    text_column: str = Field("text", description="Column holding the text (JSONL / Parquet).")
    pack: bool = Field(
        True,
        description="Concatenate documents (EOS between) and cut max_length blocks; "
        "false: one document per sequence, longer ones are an error.",
    )


class FinetuneData(_DataBase):
    """Fine-tuning rows: prompt/response or chat (sft); labels or preference pairs (reward_model)."""

    prompt_column: str = Field("prompt", description="Prompt text (sft, reward_model).")
    response_column: str = Field("response", description="Response text (sft; reward_model labels).")
    messages_column: str = Field(
        "messages",
        description="Chat rows (sft): a list of {role, content}; the last assistant turn is the response.",
    )
    label_column: str = Field("label", description="reward_model: a number, higher is better (0/1 for BCE).")
    chosen_column: str = Field("chosen", description="reward_model pairs: the preferred response.")
    rejected_column: str = Field("rejected", description="reward_model pairs: the other response.")


class TokenizerSection(_Section):
    """Which tokenizer the model uses."""

    path: str | None = Field(
        None, description="An HF tokenizer directory or hub id; null: train a byte-level BPE on the data."
    )
    vocab_size: int = Field(512, ge=260, description="Vocabulary of the trained BPE (special tokens included).")


class ModelSection(_Section):
    """The model: a preset, an HF config, or existing weights (exactly one)."""

    preset: str | None = Field(None, description="A size preset (tiny, small); default tiny.")
    config: dict[str, Any] | str | None = Field(
        None,
        description="HF config keys (with model_type, e.g. gpt2 or llama), or the path of a "
        "config.json / model directory; random initial weights.",
    )
    init: str | None = Field(
        None,
        description="Start from these weights: a catalog name (lmrl models list, e.g. "
        "smollm2-135m-instruct), a directory from pretrain/finetune/train or any HF model, or a hub id.",
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        from lmrl.errors import did_you_mean

        names = ("tiny", "small")  # lmrl.policies.lm.PRESETS; not imported here (torch)
        if value is not None and value not in names:
            raise ValueError(
                f"model.preset must be one of {', '.join(names)}, got {value!r}.{did_you_mean(value, names)}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        given = [k for k in ("preset", "config", "init") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"model.{given[0]} and model.{given[1]} are both set; give one of model.preset, "
                "model.config or model.init"
            )
        return self


class TrainingSection(_Section):
    """Optimiser, schedule, batches, evaluation and checkpoints."""

    steps: int = Field(200, ge=1, description="Optimiser steps in the whole run.")
    batch_size: int = Field(16, ge=1, description="Sequences per worker per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimiser step.")
    lr: float = Field(1e-3, gt=0.0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW decay of matrices (not biases, norms).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    warmup_steps: int = Field(
        10, ge=0, description="Linear warmup steps (at most training.steps), then cosine decay."
    )
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Final lr as a share of the peak.")
    grad_clip: float | None = Field(1.0, gt=0.0, description="Max global grad norm; null: no clipping.")
    eval_every: int = Field(50, ge=1, description="Steps between held-out evaluations (and at the end).")
    eval_batches: int | None = Field(None, ge=1, description="Cap on held-out batches per worker.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints (and at the end).")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept on disk.")
    seed: int = 0
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: autocast the forward pass (GPUs with bf16)."
    )


class TrainResources(_Section):
    """Where the Ray Train workers run."""

    num_workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel ranks).")
    use_gpu: bool = Field(False, description="One GPU per worker, NCCL backend.")
    cpus_per_worker: float | None = Field(
        None,
        gt=0.0,
        description="CPUs reserved per worker; null: 1, less on a small local Ray so that data "
        "tasks keep a CPU.",
    )
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="auto: nccl on GPU, else gloo.")
    max_failures: int = Field(
        3, ge=-1, description="Worker-group restarts from the last checkpoint (-1: unlimited)."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray (null: all).")
    address: str | None = Field(None, description="Ray cluster address; null: local Ray.")


class TrainRun(_Section):
    """Run bookkeeping."""

    name: str | None = Field(None, description="Run directory name (default: the command and time).")
    output_dir: str = Field("runs", description="Parent of run directories (shared storage on clusters).")
    progress: bool = Field(True, description="Show the live progress display.")


class _TrainConfigBase(_Section):
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    model: ModelSection = Field(default_factory=ModelSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    resources: TrainResources = Field(default_factory=TrainResources)
    run: TrainRun = Field(default_factory=TrainRun)

    @model_validator(mode="after")
    def _check_common(self) -> _TrainConfigBase:
        if not self.resources.use_gpu and self.resources.backend == "nccl":
            raise ValueError(
                "resources.backend nccl needs GPUs, got resources.use_gpu false; "
                "use backend gloo (or auto) on CPU"
            )
        if self.model.init is not None and self.tokenizer.path is not None:
            raise ValueError(
                f"tokenizer.path ({self.tokenizer.path}) is set but model.init ({self.model.init}) "
                "brings its own tokenizer; drop tokenizer.path"
            )
        return self


class PretrainConfig(_TrainConfigBase):
    """``lmrl pretrain``: a causal LM on plain text.

    Example:
        >>> PretrainConfig.model_validate({"data": {"train": "corpus.txt"}}).data.train
        ['corpus.txt']
    """

    data: PretrainData = Field(default_factory=PretrainData)


class LoraTraining(_Section):
    """LoRA on ``model.init`` (sft): only the adapter trains; ``model/`` holds the merged weights."""

    r: int = Field(8, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(16.0, gt=0.0, description="LoRA scaling numerator (scale = alpha / r).")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Linear layers to adapt by name (e.g. [q_proj, v_proj]) or all-linear "
        "(every linear layer but the LM head).",
    )

    @field_validator("target_modules")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError("lora.target_modules is empty; name modules (e.g. [q_proj, v_proj]) or use all-linear")
        return value


class FinetuneConfig(_TrainConfigBase):
    """``lmrl finetune``: supervised fine-tuning or a reward model.

    Example:
        >>> FinetuneConfig.model_validate({"task": "reward_model"}).task
        'reward_model'
    """

    task: Literal["sft", "reward_model"] = Field(
        "sft", description="sft: loss on response tokens; reward_model: a scalar score head."
    )
    data: FinetuneData = Field(default_factory=FinetuneData)
    lora: LoraTraining | None = Field(
        None, description="sft only: train a LoRA adapter on model.init instead of every weight (null: off)."
    )

    @model_validator(mode="after")
    def _check_lora(self) -> FinetuneConfig:
        if self.lora is None:
            return self
        if self.task != "sft":
            raise ValueError(f"lora applies to task sft only, got task {self.task}; remove lora")
        if self.model.init is None:
            m = self.model
            given = f"model.config {m.config!r}" if m.config is not None else f"model.preset {m.preset or 'tiny'}"
            raise ValueError(
                f"lora trains an adapter on pretrained weights and needs model.init (a catalog name such as "
                f"smollm2-135m-instruct, or a model directory), got {given}; set model.init or remove lora"
            )
        return self


TrainConfig = PretrainConfig | FinetuneConfig
