"""The Ray Train skeleton that ``pretrain`` and ``finetune`` share.

:func:`train_loop_per_worker` runs on every Ray Train worker (one rank of
data-parallel training, DDP over gloo on CPU or NCCL on GPU):

1. load the model from ``init`` (same seed everywhere; DDP broadcasts rank 0's
   weights), with ``lora`` wrap it in a LoRA adapter (only the adapter trains;
   checkpoints hold the adapter), AdamW with decay on matrices only, linear
   warmup then cosine decay;
2. restore weights, optimiser, scheduler and the data position from
   ``ray.train.get_checkpoint()`` when the run restarts (a worker died and
   ``FailureConfig`` restarted the group, or the driver came back with
   ``--resume``);
3. step through its own ``get_dataset_shard("train")``, accumulating
   gradients over ``grad_accum`` micro-batches, clipping the global norm;
4. every ``eval_every`` steps, the held-out loss (and perplexity, or reward
   accuracy) summed over all ranks;
5. every ``checkpoint_every`` steps, rank 0 writes HF weights + tokenizer +
   ``train_state.pt`` (optimizer, scheduler, step, epoch, batch in epoch)
   through ``ray.train.report``.

:func:`run_training` is the driver side: it builds the ``TorchTrainer``,
shows a live progress display fed by ``metrics.jsonl``, and turns worker
failures into one-line errors. A worker can be made to die on purpose, to
check recovery: :mod:`lmrl.pipelines.lm_train.faults`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lmrl.errors import DataError, LmrlError, RunError
from lmrl.pipelines.lm_train.faults import Fault
from lmrl.pipelines.run_dir import (
    METRICS_FILE,
    RowFollower,
    RunProgress,
    append_row,
    figure,
    read_rows,
)

TRAIN_STATE_FILE = "train_state.pt"
TRAIN_DIR = "train"  # Ray Train's run folder inside the run directory (checkpoints, snapshot)


# --- on each worker --------------------------------------------------------------------------


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine decay to ``min_ratio``.

    Args:
        step: Optimiser steps taken so far.
        total: Steps in the run.
        warmup: Warmup steps.
        min_ratio: Final multiplier.
    """
    warmup = min(warmup, total)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def load_model(source: str, model_class: str, seed: int):
    """The model to train: a causal LM, or a one-score sequence classifier (reward model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    torch.manual_seed(seed)  # the same new heads on every rank
    if model_class == "causal_lm":
        return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, dtype=torch.float32)
    if model.config.pad_token_id is None:  # the score is read at the last non-pad token
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(source)
        model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return model


def _param_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _loss(model, batch: dict, kind: str):
    """Returns ``(loss to backprop, loss sum, count, correct)`` for one micro-batch."""
    import torch
    import torch.nn.functional as F

    if kind in ("causal", "sft"):
        mask = batch["attention_mask"]
        width = int(mask.sum(1).max())  # right-padded: drop all-pad columns
        ids, mask, labels = batch["input_ids"][:, :width], mask[:, :width], batch["labels"][:, :width]
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, T-1, V)
        targets = labels[:, 1:]  # (B, T-1)
        total = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100, reduction="sum"
        )
        count = (targets != -100).sum()
        return total / count.clamp(min=1), total.detach(), count, torch.zeros(())
    if kind == "rm_labels":
        width = int(batch["attention_mask"].sum(1).max())
        score = model(
            input_ids=batch["input_ids"][:, :width], attention_mask=batch["attention_mask"][:, :width]
        ).logits[:, 0].float()  # (B,)
        label = batch["label"].float()
        loss = F.binary_cross_entropy_with_logits(score, label)
        correct = ((score > 0) == (label > 0.5)).sum()
        return loss, loss.detach() * len(label), torch.tensor(len(label)), correct
    # rm_pairs: Bradley-Terry, -log sigmoid(r_chosen - r_rejected) (Ouyang et al. 2022, eq. 1)
    width = int(torch.maximum(batch["chosen_mask"].sum(1), batch["rejected_mask"].sum(1)).max())
    ids = torch.cat([batch["chosen_ids"][:, :width], batch["rejected_ids"][:, :width]])  # (2B, T)
    mask = torch.cat([batch["chosen_mask"][:, :width], batch["rejected_mask"][:, :width]])
    scores = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()  # (2B,)
    chosen, rejected = scores.chunk(2)
    loss = -F.logsigmoid(chosen - rejected).mean()
    n = len(chosen)
    return loss, loss.detach() * n, torch.tensor(n), (chosen > rejected).sum()


def _to_device(batch: dict, device) -> dict:
    import torch

    return {k: v.to(device, dtype=torch.float32 if k == "label" else torch.long) for k, v in batch.items()}


def _evaluate(model, shard, kind: str, batch_size: int, max_batches: int | None, device) -> dict[str, float]:
    import torch
    import torch.distributed as dist

    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, count, correct
    with torch.no_grad():
        for i, batch in enumerate(shard.iter_torch_batches(batch_size=batch_size, drop_last=False)):
            if max_batches is not None and i >= max_batches:
                break
            _, total, count, correct = _loss(model, _to_device(batch, device), kind)
            sums += torch.stack([total.double(), count.double(), correct.double()]).to(device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    model.train()
    loss_sum, count, correct = (float(x) for x in sums)
    if count == 0:
        return {}
    out = {"eval_loss": loss_sum / count}
    if kind in ("causal", "sft"):
        out["eval_ppl"] = math.exp(min(out["eval_loss"], 50.0))
    else:
        out["eval_accuracy"] = correct / count
    return out


def _next_attempt(path: Path) -> int:
    rows = read_rows(path)
    return 1 + max((int(r.get("attempt", 0)) for r in rows), default=0)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker's loop (see the module docstring).

    Args:
        config: ``kind`` (causal, sft, rm_labels, rm_pairs), ``model_class``
            (causal_lm, sequence_classification), ``model_source`` (HF dir or
            hub id), ``tokenizer_dir``, ``run_dir``, ``training`` (the
            ``TrainingSection`` as a dict), ``has_eval``, ``fault`` (a
            :class:`~lmrl.pipelines.lm_train.faults.Fault` as a dict, or ``None``),
            ``lora`` (``LoraSettings`` as a dict, or ``None``: train every weight).
    """
    import ray.train
    import torch
    from ray.train.torch import get_device, prepare_model
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Writing model shards" bar per checkpoint
    logging.getLogger().setLevel(logging.WARNING)  # Ray Train logs each report at INFO
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    t = config["training"]
    kind, run_dir = config["kind"], Path(config["run_dir"])
    metrics = run_dir / METRICS_FILE
    device = get_device()
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(config.get("threads", 1))))

    raw = load_model(config["model_source"], config["model_class"], t["seed"])
    if config.get("lora"):
        from lmrl.policies.lora import LoraSettings, apply_lora

        raw = apply_lora(raw, LoraSettings(**config["lora"]))  # the base is frozen
    model = prepare_model(raw)
    opt = torch.optim.AdamW(_param_groups(raw, t["weight_decay"]), lr=t["lr"], betas=tuple(t["betas"]))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, t["steps"], t["warmup_steps"], t["min_lr_ratio"])
    )
    state = {"step": 0, "epoch": 0, "batch": 0, "tokens": 0}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            restore_weights(raw, Path(d))
            saved = torch.load(Path(d) / TRAIN_STATE_FILE, weights_only=False)
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["scheduler"])
            state.update(saved["state"])
    attempt = _next_attempt(metrics) if rank == 0 else 0
    resumed_from = state["step"]

    train_shard = ray.train.get_dataset_shard("train")
    eval_shard = ray.train.get_dataset_shard("eval") if config["has_eval"] else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t["dtype"] == "bfloat16")

    def evaluate_and_log() -> dict[str, float]:
        if eval_shard is None:
            return {}
        with autocast:
            out = _evaluate(model, eval_shard, kind, t["batch_size"], t["eval_batches"], device)
        if rank == 0 and out:
            append_row(metrics, {"step": state["step"], **out, "attempt": attempt})
        return out

    if state["step"] == 0:
        evaluate_and_log()  # the starting point: perplexity before training
    accumulated, window_tokens, window_start, started = 0, 0, time.perf_counter(), time.perf_counter()
    step_loss: list = [0.0, 0]  # loss sum and count over this step's micro-batches
    model.train()
    fault = Fault(**config["fault"]) if config.get("fault") else None
    while state["step"] < t["steps"]:
        seen = 0
        batches = train_shard.iter_torch_batches(
            batch_size=t["batch_size"],
            drop_last=True,
            local_shuffle_buffer_size=config.get("shuffle_buffer") or None,
            local_shuffle_seed=t["seed"] * 100_003 + state["epoch"] if config.get("shuffle_buffer") else None,
        )
        for index, batch in enumerate(batches):
            seen += 1
            if index < state["batch"]:
                continue  # the data position of the checkpoint: these batches were trained on
            batch = _to_device(batch, device)
            last_micro = accumulated + 1 == t["grad_accum"]
            sync = model.no_sync() if (hasattr(model, "no_sync") and not last_micro) else nullcontext()
            with sync, autocast:
                loss, total, count, _ = _loss(model, batch, kind)
                (loss / t["grad_accum"]).backward()
            step_loss[0] += float(total)
            step_loss[1] += int(count)
            accumulated += 1
            state["batch"] = index + 1
            n_tokens = int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(
                batch["chosen_mask"].sum() + batch["rejected_mask"].sum()
            )
            window_tokens += n_tokens
            if not last_micro:
                continue
            accumulated = 0
            norm = None
            if t["grad_clip"] is not None:
                norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"]))
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens"] += window_tokens * ctx.get_world_size()
            now = time.perf_counter()
            if rank == 0:
                append_row(metrics, {
                    "step": state["step"],
                    "loss": round(step_loss[0] / max(1, step_loss[1]), 6),
                    "lr": lr,
                    "grad_norm": norm,
                    "tokens_per_s": round(window_tokens * ctx.get_world_size() / max(now - window_start, 1e-9), 1),
                    "tokens": state["tokens"],
                    "epoch": state["epoch"],
                    "attempt": attempt,
                    "resumed_from": resumed_from,
                    "elapsed_s": round(now - started, 2),
                })  # fmt: skip
            window_tokens, window_start, step_loss = 0, now, [0.0, 0]
            final = state["step"] >= t["steps"]
            evaluated = evaluate_and_log() if (state["step"] % t["eval_every"] == 0 or final) else {}
            if state["step"] % t["checkpoint_every"] == 0 or final:
                _report(raw, opt, sched, state, config, {"step": state["step"], **evaluated}, rank)
            if fault is not None and fault.due(rank, state["step"]):
                fault.trigger(run_dir / TRAIN_DIR, state["step"], t["checkpoint_every"])
            if final:
                break
        else:
            if seen == 0:
                raise DataError(
                    f"the training data gives worker {rank} no full batch of {t['batch_size']} "
                    "sequences; lower training.batch_size or resources.num_workers, or add data"
                )
            state["epoch"] += 1
            state["batch"] = 0
            continue
        break


def restore_weights(raw, checkpoint_dir: Path) -> None:
    """Loads a checkpoint's weights into ``raw``: the adapter only for a LoRA model (``peft``), else all."""
    import torch

    from lmrl.policies.lora import is_lora

    if is_lora(raw):  # a LoRA checkpoint holds the adapter only; the base comes from model_source
        from peft.utils import load_peft_weights, set_peft_model_state_dict

        result = set_peft_model_state_dict(raw, load_peft_weights(str(checkpoint_dir), device="cpu"))
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing:
            raise RunError(f"the checkpoint {checkpoint_dir} lacks adapter weights ({missing[0]}...); "
                           "resume with the run's own lora settings")
        return
    loaded = type(raw).from_pretrained(checkpoint_dir, dtype=torch.float32)
    raw.load_state_dict(loaded.state_dict())


def _report(raw, opt, sched, state: dict, config: dict, metrics: dict, rank: int) -> None:
    """All ranks report (it is a barrier); rank 0 attaches the checkpoint."""
    import ray.train
    import torch

    name = f"step_{state['step']:06d}"
    if rank != 0:
        ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
        return
    from lmrl.pipelines.lm_train.data import load_tokenizer

    with tempfile.TemporaryDirectory() as d:
        raw.save_pretrained(d)
        load_tokenizer(config["tokenizer_dir"]).save_pretrained(d)
        torch.save(
            {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "state": dict(state)},
            Path(d) / TRAIN_STATE_FILE,
        )
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d), checkpoint_dir_name=name)


# --- on the driver ---------------------------------------------------------------------------


def latest_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train rows, eval rows)`` by step, keeping each step's row from the latest attempt.

    Steps after a checkpoint are run again after a restart; the later run's rows win.
    """
    train: dict[int, dict] = {}
    ev: dict[int, dict] = {}
    for row in sorted(rows, key=lambda r: r.get("attempt", 0)):
        (ev if "eval_loss" in row else train)[row["step"]] = row
    return [train[k] for k in sorted(train)], [ev[k] for k in sorted(ev)]


def cpus_per_worker(requested: float | None, num_workers: int, use_gpu: bool) -> float:
    """CPUs to reserve per worker: ``requested``, or 1 -- less on a small Ray, so data tasks keep one CPU."""
    if requested is not None:
        return requested
    import ray

    total = float(ray.cluster_resources().get("CPU", 1.0))
    if use_gpu or total - 1.0 >= num_workers:
        return 1.0
    share = (total - 1.0) / num_workers
    if share <= 0:
        raise RunError(
            f"Ray has {total:g} CPU for {num_workers} training workers and their data tasks; "
            "lower resources.num_workers or start Ray with more CPUs"
        )
    return share


def run_training(
    *,
    run_dir: Path,
    loop_config: dict[str, Any],
    datasets: dict[str, Any],
    resources,
    training,
    title: str,
    progress: bool = True,
):
    """Runs :func:`train_loop_per_worker` on a ``TorchTrainer`` and returns its ``Result``.

    Ray Train keeps its state in ``RUN_DIR/train``: running again with the same
    run directory continues from the latest checkpoint there (``--resume``).

    Args:
        run_dir: The run directory (on storage every node can reach).
        loop_config: The workers' config (see :func:`train_loop_per_worker`).
        datasets: ``{"train": Dataset, "eval": Dataset}`` (Ray Data).
        resources: The ``TrainResources`` section.
        training: The ``TrainingSection``.
        title: The progress line's title.
        progress: Show the live display.

    Raises:
        LmrlError: A worker raised one (e.g. a data problem).
        RunError: The workers failed more than ``resources.max_failures`` times.
    """
    from ray.data import ExecutionOptions
    from ray.train import (
        CheckpointConfig,
        DataConfig,
        FailureConfig,
        LoggingConfig,
        RunConfig,
        ScalingConfig,
    )
    from ray.train.torch import TorchConfig, TorchTrainer

    cpus = cpus_per_worker(resources.cpus_per_worker, resources.num_workers, resources.use_gpu)
    per_worker: dict[str, float] = {"CPU": cpus}
    if resources.use_gpu:
        per_worker["GPU"] = 1.0
    backend = resources.backend if resources.backend != "auto" else ("nccl" if resources.use_gpu else "gloo")
    fault = Fault.from_env()
    config = {**loop_config, "threads": max(1, int(cpus)), "fault": asdict(fault) if fault else None}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=config,
        torch_config=TorchConfig(backend=backend),
        scaling_config=ScalingConfig(
            num_workers=resources.num_workers, use_gpu=resources.use_gpu, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            name=TRAIN_DIR,
            storage_path=str(Path(run_dir).resolve()),
            failure_config=FailureConfig(max_failures=resources.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=training.keep_checkpoints),
            logging_config=LoggingConfig(log_level="WARNING"),  # our display shows the progress
        ),
        datasets=datasets,
        # A fixed order makes each worker's shard, and so the checkpoint's data position, reproducible.
        dataset_config=DataConfig(execution_options=ExecutionOptions(preserve_order=True)),
    )
    display = RunProgress(title, training.steps, figures="starting Ray Train workers", enabled=progress)
    with display, RowFollower(Path(run_dir) / METRICS_FILE, _TrainFigures(display), enabled=progress):
        try:
            return trainer.fit()
        except Exception as exc:  # ray.train.TrainingFailedError and friends
            cause = _user_error(exc)
            if cause is not None:
                raise cause from None
            raise RunError(
                f"training failed after {resources.max_failures} restart(s): {_one_line(exc)}; "
                f"fix the cause, then continue with --resume {run_dir}"
            ) from exc


def _user_error(exc: BaseException) -> LmrlError | None:
    """The first :class:`LmrlError` a worker raised, found inside Ray Train's wrappers."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, LmrlError):
            return e
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
        failures = getattr(e, "worker_failures", None)
        if isinstance(failures, dict):
            stack.extend(failures.values())
        if hasattr(e, "as_instanceof_cause"):
            try:
                stack.append(e.as_instanceof_cause())
            except Exception:  # noqa: BLE001 - best effort
                pass
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(exc).__name__


#: What ``peft`` writes beside the tokenizer in a LoRA checkpoint (not part of the merged model).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md")


def finalize_model(checkpoint_dir: Path, out: Path, meta: dict[str, Any], base: str | None = None) -> Path:
    """Copies a checkpoint's HF files to ``out`` (atomically) and writes ``lmrl.json``.

    A LoRA checkpoint (an ``adapter_config.json``) is merged into its base
    weights first, so ``out`` is a plain model that ``from_pretrained`` loads.

    Args:
        checkpoint_dir: A checkpoint written by the workers.
        out: The model directory to create (replaced if it exists).
        meta: The ``lmrl.json`` content.
        base: The weights a LoRA checkpoint adapts (``model_source``).
    """
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lora = (checkpoint_dir / "adapter_config.json").is_file()
    skip = (TRAIN_STATE_FILE, ".*", *(ADAPTER_FILES if lora else ()))
    shutil.copytree(checkpoint_dir, tmp, ignore=shutil.ignore_patterns(*skip))
    if lora:
        _merge_adapter(checkpoint_dir, base, tmp)
    (tmp / "lmrl.json").write_text(json.dumps(meta, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _merge_adapter(adapter_dir: Path, base: str | None, out: Path) -> None:
    """Saves ``base`` with the LoRA adapter of ``adapter_dir`` merged into its weights to ``out``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from lmrl.policies.lora import merged

    hf_logging.disable_progress_bar()  # the run's own display has ended; no loading/writing bars
    if base is None:
        raise RunError(f"{adapter_dir} holds a LoRA adapter but the run records no base model to merge it into")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged(PeftModel.from_pretrained(model, adapter_dir)).save_pretrained(out)


class _TrainFigures:
    """Shows the latest train and held-out figures of new ``metrics.jsonl`` rows on the display."""

    def __init__(self, display: RunProgress) -> None:
        self.display = display
        self.last: dict[str, Any] | None = None
        self.last_eval: dict[str, Any] | None = None

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if "eval_loss" in row:
                self.last_eval = row
            else:
                self.last = row
        figures = []
        if self.last is not None:
            r = self.last
            figures.append(f"loss {figure(r['loss'])}  lr {figure(r['lr'], '.2e')}  {figure(r['tokens_per_s'], '.0f')} tok/s")
        if self.last_eval is not None:
            e = self.last_eval
            figures.append(
                f"eval ppl {figure(e['eval_ppl'], '.2f')}" if "eval_ppl" in e else f"eval acc {figure(e.get('eval_accuracy', 0))}"
            )
        if figures:
            self.display.update(self.last["step"] if self.last else 0, "  ".join(figures))
