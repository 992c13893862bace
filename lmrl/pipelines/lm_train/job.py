"""``lmrl pretrain`` and ``lmrl finetune`` on the driver: validate, prepare, train, write the model.

One entry point, :func:`run_job`, for every task. ``pretrain`` trains a causal
LM on text, JSONL or Parquet (tokenised as a stream, packed into
``data.max_length`` blocks). ``finetune`` with ``task: sft`` trains on
prompt/response rows (or chat ``messages``) with the loss on the response
tokens only -- behaviour cloning on ``lmrl data collect`` demos -- and with
``task: reward_model`` trains a one-score sequence classifier on ``label``
rows (binary cross-entropy) or ``chosen``/``rejected`` pairs (Bradley-Terry),
the model that ``reward: {model: DIR}`` names. The result, ``RUN_DIR/model``,
loads with ``from_pretrained`` and serves as ``policy.model`` of ``lmrl train``.

``model.init`` may name a catalog model (``smollm2-135m-instruct``), resolved
as ``lmrl train`` resolves ``policy.model``. With a ``lora`` section only a
LoRA adapter on those weights trains (checkpoints hold the adapter), and
``model/`` gets the merged weights, so RL puts a fresh adapter on top. Rows
that ``lmrl data collect --model/--like`` rendered in an RL policy's format
(:mod:`~lmrl.pipelines.lm_train.rl_format`) must be trained with that
tokenizer, and ``model/lmrl.json`` records their adapter settings, so that
``lmrl eval`` prompts the result as the rows did.

Example:
    >>> from lmrl.pipelines.lm_train.config import PretrainConfig
    >>> cfg = PretrainConfig.model_validate({"data": {"train": ["corpus.txt"]}, "training": {"steps": 50}})
    >>> run = run_job(cfg)  # doctest: +SKIP
    >>> run / "model"  # doctest: +SKIP

A run directory (:mod:`lmrl.pipelines.run_dir`) holds::

    config.yaml        the validated config (``--resume`` reads it)
    data.json          resolved files, row kind, counts (``--resume`` reads it)
    tokenizer/         the tokenizer (trained BPE or a copy of the given one)
    init/              the initial weights (presets and HF configs only)
    train/             Ray Train's run: checkpoints step_NNNNNN/ and its snapshot
    metrics.jsonl      one row per step (loss, lr, tokens/s) and per evaluation
    loss_curve.png
    model/             the result: HF weights + tokenizer + lmrl.json
    summary.json       final figures

Everything that can be wrong with the data or the config is found before the
run directory is created, so a bad row leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lmrl
from lmrl.errors import ConfigError, DataError, RunError
from lmrl.pipelines.lm_train import data as D
from lmrl.pipelines.lm_train.config import FinetuneConfig, PretrainConfig
from lmrl.pipelines.lm_train.loop import TRAIN_STATE_FILE, finalize_model, latest_rows, run_training
from lmrl.pipelines.run_dir import (
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    Curve,
    Panel,
    check_free,
    config_to_yaml,
    new_run_dir,
    plot_curves,
    read_rows,
    read_state,
    write_json,
)
from lmrl.runtime import init_ray

DATA_FILE = "data.json"  # the state file: resolved data, row kind, model source (``--resume`` reads it)
CURVE_FILE = "loss_curve.png"
MODEL_DIR = "model"


@dataclass
class Prepared:
    """Everything validated before the run directory is written."""

    task: str
    spec: D.Spec
    train_files: list[tuple[Path, str]]
    eval_files: list[tuple[Path, str]]
    split: bool
    tokenizer: Any
    model_class: str
    init_model: Any = None  # a freshly initialised model to save, or None with model.init
    model_source: str | None = None
    summaries: dict[str, Any] = field(default_factory=dict)
    env_ids: list[str] = field(default_factory=list)
    max_admissible: int = 0
    rl_format: dict[str, Any] | None = None  # how collected rows were rendered (rl_format.read_format)


#: ``config.yaml``'s sections in reading order.
_ORDER = ("task", "data", "tokenizer", "model", "lora", "training", "resources", "run")


def task_of(cfg: PretrainConfig | FinetuneConfig) -> str:
    """``pretrain``, ``sft`` or ``reward_model``."""
    return cfg.task if isinstance(cfg, FinetuneConfig) else "pretrain"


def command_of(cfg: PretrainConfig | FinetuneConfig) -> str:
    """The command that runs (and resumes) ``cfg``: ``lmrl pretrain`` or ``lmrl finetune``."""
    return "lmrl finetune" if isinstance(cfg, FinetuneConfig) else "lmrl pretrain"


def default_run_dir(cfg: PretrainConfig | FinetuneConfig) -> Path:
    """``run.output_dir/run.name`` (default name: the task and the start time)."""
    return new_run_dir(cfg.run.output_dir, cfg.run.name, task_of(cfg))


# --- preparing --------------------------------------------------------------------------------


def prepare(cfg: PretrainConfig | FinetuneConfig) -> Prepared:
    """Resolves files, picks the row kind, gets a tokenizer and a model, and scans all data.

    Raises:
        ConfigError: A config value does not fit (no training files, a model
            too short for ``data.max_length``...).
        DataError: A file or row is bad (named), or the data is too small.
    """
    task = task_of(cfg)
    d = cfg.data
    if not d.train:
        raise ConfigError("data.train is empty; give the training files, e.g. --set data.train=[corpus.txt]")
    train_files = D.resolve_files(d.train, d.format, "data.train")
    eval_files = D.resolve_files(d.eval, d.format, "data.eval") if d.eval else []
    spec = _spec(cfg, task, train_files)
    for path, fmt in eval_files:  # the eval files must fit the same kind
        _spec(cfg, task, [(path, fmt)], expect=spec.kind)
    split = not eval_files and d.eval_fraction > 0
    tokenizer = _tokenizer(cfg, spec, train_files)
    model_class = "sequence_classification" if task == "reward_model" else "causal_lm"
    prepared = Prepared(task, spec, train_files, eval_files, split, tokenizer, model_class)
    prepared.rl_format = _rl_format(cfg, train_files + eval_files, tokenizer)
    _model(cfg, prepared)  # a model too short for data.max_length fails before the data pass
    train = D.scan(spec, train_files, tokenizer, split=split, key="data.train")
    prepared.summaries["train"] = _summary_dict(train)
    prepared.env_ids = sorted(train.env_ids)
    prepared.max_admissible = train.max_admissible
    held_out = train.split_rows["eval"]
    if eval_files:
        ev = D.scan(spec, eval_files, tokenizer, split=False, key="data.eval")
        prepared.summaries["eval"] = _summary_dict(ev)
        held_out = ev.rows
    _check_sizes(cfg, spec, train, held_out, eval_files or train_files, split or bool(eval_files))
    return prepared


def _spec(cfg, task: str, files: list[tuple[Path, str]], expect: str | None = None) -> D.Spec:
    d = cfg.data
    path, fmt = files[0]
    if task == "pretrain":
        kind, columns = "causal", {"text": "text" if fmt == "text" else d.text_column}
    else:
        if fmt == "text":
            raise DataError(f"{path}: {task} data must be JSONL or Parquet with named columns, got a text file")
        names = {
            "prompt": d.prompt_column,
            "response": d.response_column,
            "messages": d.messages_column,
            "label": d.label_column,
            "chosen": d.chosen_column,
            "rejected": d.rejected_column,
        }
        kind, columns = D.detect_kind(task, D.file_columns(path, fmt), names, path)
        for other, other_fmt in files[1:]:
            other_kind, other_columns = D.detect_kind(task, D.file_columns(other, other_fmt), names, other)
            if (other_kind, other_columns) != (kind, columns):
                raise DataError(f"{other}: its columns give {other_kind} rows, but {path} gives {kind}; use one layout")
    if expect is not None and kind != expect:
        raise DataError(f"{path}: its columns give {kind} rows, but the training files give {expect}")
    pack = bool(getattr(d, "pack", False)) and kind == "causal"
    return D.Spec(kind, columns, d.max_length, pack=pack, eval_fraction=d.eval_fraction)


def init_source(cfg) -> str | None:
    """``model.init`` as a loadable path or hub id: catalog names resolve (pulled on first use)."""
    if cfg.model.init is None:
        return None
    from lmrl.policies.models import resolve

    return resolve(cfg.model.init)


def _tokenizer(cfg, spec: D.Spec, files: list[tuple[Path, str]]):
    from transformers import AutoTokenizer

    source = init_source(cfg) or cfg.tokenizer.path
    if source is None:
        from lmrl.policies.lm import train_tokenizer

        return train_tokenizer(D.iter_texts(spec, files), vocab_size=cfg.tokenizer.vocab_size)
    key = "model.init" if cfg.model.init else "tokenizer.path"
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key} `{source}`: cannot load its tokenizer ({D.first_line(exc)})") from None
    if tok.eos_token_id is None:
        raise ConfigError(f"the tokenizer of {key} `{source}` has no EOS token; lmrl needs one to end texts")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _rl_format(cfg, files: list[tuple[Path, str]], tokenizer) -> dict[str, Any] | None:
    """The RL prompt format the data files were rendered in (one for all), checked against the tokenizer.

    Raises:
        DataError: Files rendered in different formats, or some in one and some plain.
        ConfigError: The rows were rendered for another tokenizer than this run's.
    """
    from lmrl.pipelines.lm_train.rl_format import read_format, tokenizer_fingerprint

    found = {str(path): read_format(path) for path, _ in files}
    kinds = {json.dumps(m, sort_keys=True) for m in found.values()}
    if len(kinds) > 1:
        listed = "; ".join(f"{p}: {m['model'] if m else 'plain'}" for p, m in found.items())
        raise DataError(
            f"the data files were rendered in different prompt formats ({listed}); "
            "collect them all with the same --model/--like"
        )
    path, meta = next(iter(found.items()))
    if meta is None:
        return None
    if meta["tokenizer"] != tokenizer_fingerprint(tokenizer):
        ours = f"model.init `{cfg.model.init}`" if cfg.model.init else (
            f"tokenizer.path `{cfg.tokenizer.path}`" if cfg.tokenizer.path else "the BPE this run would train"
        )
        raise ConfigError(
            f"{path} was rendered for the tokenizer of `{meta['model']}` (lmrl data collect --model), but "
            f"{ours} tokenises differently; set model.init to {meta['model']} or collect again with --model"
        )
    return meta


def _summary_dict(s: D.DataSummary) -> dict[str, Any]:
    return {"files": s.files, "rows": s.rows, "tokens": s.tokens, "split_rows": s.split_rows, "examples": s.examples}


def _check_sizes(cfg, spec: D.Spec, train: D.DataSummary, held_out: int, eval_named, wants_eval: bool) -> None:
    workers, batch = cfg.resources.num_workers, cfg.training.batch_size
    rows = train.split_rows["train"]
    share = rows / max(1, train.rows)
    examples = int(train.examples * share) if spec.pack else rows
    names = ", ".join(train.files)
    if examples < workers * batch:
        what = f"{examples} sequences of {spec.max_length} tokens" if spec.pack else f"{examples} training rows"
        raise DataError(
            f"{names}: {what} after holding out eval rows, fewer than resources.num_workers x "
            f"training.batch_size ({workers} x {batch}); add data or lower training.batch_size"
        )
    if wants_eval:
        held = int(train.tokens * (1 - share)) // spec.max_length if (spec.pack and held_out and not cfg.data.eval) else held_out
        if held < workers:
            where = ", ".join(str(p) for p, _ in eval_named)
            raise DataError(
                f"{where}: {held} held-out {'sequences' if spec.pack else 'rows'}, fewer than "
                f"resources.num_workers ({workers}); raise data.eval_fraction ({cfg.data.eval_fraction}) "
                "or give data.eval files"
            )


def _model(cfg, prepared: Prepared) -> None:
    """Builds the initial model (presets, HF configs) or checks ``model.init``; sets the source."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok, m, max_length = prepared.tokenizer, cfg.model, cfg.data.max_length
    if m.init is not None:
        source = init_source(cfg)
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model.init `{m.init}`: cannot load it ({D.first_line(exc)})") from None
        _check_model_config(config, tok, max_length, f"model.init `{m.init}`")
        if getattr(cfg, "lora", None) is not None:
            _check_lora_targets(config, cfg.lora.target_modules, m.init)
        prepared.model_source = source
        return
    if m.config is None:
        from lmrl.policies.lm import build_preset

        model = build_preset(m.preset or "tiny", tok, seed=cfg.training.seed)
    else:
        config = _hf_config(m.config)
        config.vocab_size = len(tok)
        for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
            setattr(config, name, getattr(tok, name, None) if name != "bos_token_id" else tok.eos_token_id)
        with torch.random.fork_rng():
            torch.manual_seed(cfg.training.seed)
            try:
                model = AutoModelForCausalLM.from_config(config)
            except ValueError as exc:
                raise ConfigError(f"model.config: no causal LM for it ({D.first_line(exc)})") from None
    _check_model_config(model.config, tok, max_length, "the model")
    model.config.pad_token_id = tok.pad_token_id
    prepared.init_model = model


def _check_lora_targets(config, targets: list[str] | str, init: str) -> None:
    """Raises ConfigError if ``lora.target_modules`` names layers the model lacks (built on the meta device)."""
    import torch
    from transformers import AutoModelForCausalLM

    from lmrl.errors import did_you_mean
    from lmrl.policies.lora import linear_module_names

    if targets == "all-linear":
        return
    with torch.device("meta"):
        have = linear_module_names(AutoModelForCausalLM.from_config(config))
    unknown = [t for t in targets if t not in have]
    if unknown:
        raise ConfigError(
            f"lora.target_modules {unknown} match no linear layer of model.init `{init}` "
            f"({config.model_type}).{did_you_mean(unknown[0], have)} It has: {', '.join(have)} (or use all-linear)"
        )


def _hf_config(value: dict[str, Any] | str):
    from transformers import AutoConfig

    try:
        if isinstance(value, str):
            return AutoConfig.from_pretrained(value)
        kwargs = dict(value)
        model_type = kwargs.pop("model_type", None)
        if model_type is None:
            raise ConfigError(f"model.config needs a model_type (e.g. gpt2, llama), got keys {sorted(value)}")
        return AutoConfig.for_model(model_type, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model.config {value!r}: {D.first_line(exc)}") from None


def _check_model_config(config, tok, max_length: int, what: str) -> None:
    positions = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if positions is not None and positions < max_length:
        raise ConfigError(
            f"data.max_length ({max_length}) is longer than {what} can attend ({positions} positions); "
            f"lower data.max_length to <= {positions}"
        )
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None and len(tok) > vocab:
        raise ConfigError(f"the tokenizer has {len(tok)} tokens but {what} only {vocab} embeddings")


# --- running ----------------------------------------------------------------------------------


def run_job(
    cfg: PretrainConfig | FinetuneConfig,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> Path:
    """Validates, prepares and trains; returns the run directory (the model is in ``model/``).

    Args:
        cfg: The config (with ``resume``: the run's own ``config.yaml``).
        resume: A run directory to continue from its latest checkpoint.
        run_dir: Where to write a new run (default: ``run.output_dir/run.name``).

    Raises:
        ConfigError, DataError: Before anything is written.
        RunError: The run directory is taken, or training failed.
    """
    if resume is not None:
        run = Path(resume)
        info = read_state(run, DATA_FILE, "`lmrl pretrain` or `lmrl finetune`")
        spec = D.Spec(**info["spec"])
        train_files = [(Path(p), f) for p, f in info["train_files"]]
        eval_files = [(Path(p), f) for p, f in info["eval_files"]]
        for p, _ in train_files + eval_files:
            if not p.exists():
                raise DataError(f"cannot resume {run}: its data file {p} is gone; restore it first")
        split, model_class, model_source = info["split"], info["model_class"], info["model_source"]
        meta_extra = info.get("meta", {})
    else:
        run = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
        check_free(run, DATA_FILE, command_of(cfg))
        prepared = prepare(cfg)
        run.mkdir(parents=True, exist_ok=True)
        spec, train_files, eval_files, split = prepared.spec, prepared.train_files, prepared.eval_files, prepared.split
        model_class = prepared.model_class
        prepared.tokenizer.save_pretrained(run / "tokenizer")
        if prepared.init_model is not None:
            prepared.init_model.save_pretrained(run / "init")
            prepared.tokenizer.save_pretrained(run / "init")
            model_source = str((run / "init").resolve())
        else:
            model_source = prepared.model_source
        spec = D.Spec(**{**asdict(spec), "tokenizer_dir": str((run / "tokenizer").resolve())})
        meta_extra = _meta(cfg, prepared)
        (run / CONFIG_FILE).write_text(config_to_yaml(cfg, _ORDER), encoding="utf-8")
        write_json(run / DATA_FILE, {
            "spec": asdict(spec),
            "train_files": [[str(p.resolve()), f] for p, f in train_files],
            "eval_files": [[str(p.resolve()), f] for p, f in eval_files],
            "split": split,
            "model_class": model_class,
            "model_source": model_source,
            "summaries": prepared.summaries,
            "meta": meta_extra,
        })  # fmt: skip
    # Before Ray Data, which would otherwise start a default Ray itself (a no-op when the CLI started it).
    init_ray(cfg.resources.address, cfg.resources.num_cpus, log_to_driver=False)
    datasets = _datasets(spec, train_files, eval_files, split)
    loop_config = {
        "kind": spec.kind,
        "model_class": model_class,
        "model_source": model_source,
        "tokenizer_dir": spec.tokenizer_dir,
        "run_dir": str(run.resolve()),
        "training": cfg.training.model_dump(mode="json"),
        "has_eval": "eval" in datasets,
        "shuffle_buffer": cfg.data.shuffle_buffer,
        "lora": _lora(cfg),
    }
    started = time.perf_counter()
    title = f"{task_of(cfg)} ({spec.kind}, {cfg.resources.num_workers} workers)"
    result = run_training(
        run_dir=run,
        loop_config=loop_config,
        datasets=datasets,
        resources=cfg.resources,
        training=cfg.training,
        title=title,
        progress=cfg.run.progress,
    )
    return _finish(cfg, run, result, meta_extra, time.perf_counter() - started)


def _lora(cfg) -> dict[str, Any] | None:
    """``LoraSettings`` as a dict when the config trains a LoRA adapter, else None."""
    lora = getattr(cfg, "lora", None)
    return None if lora is None else lora.model_dump(mode="json")


def _datasets(spec: D.Spec, train_files, eval_files, split: bool) -> dict[str, Any]:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # our own display shows progress
    ctx.print_on_execution_start = False
    out = {"train": D.build_dataset(spec, train_files, "train" if split else "all")}
    if eval_files:
        out["eval"] = D.build_dataset(spec, eval_files, "all")
    elif split:
        out["eval"] = D.build_dataset(spec, train_files, "eval")
    return out


def _meta(cfg, prepared: Prepared) -> dict[str, Any]:
    """The ``lmrl.json`` fields known before training."""
    meta: dict[str, Any] = {
        "format": "lmrl-model",
        "task": prepared.task,
        "kind": prepared.spec.kind,
        "lmrl_version": lmrl.__version__,
        "base": cfg.model.init or (cfg.model.config if cfg.model.config is not None else (cfg.model.preset or "tiny")),
    }
    if _lora(cfg) is not None:
        meta["lora"] = {**_lora(cfg), "merged": True}
    if prepared.model_class == "causal_lm" and prepared.rl_format is not None:
        # The rows were rendered as an RL policy acts: evaluate and serve the result the same way.
        rl = prepared.rl_format
        meta.update(
            env_id=rl["env_id"], env_kwargs=rl["env_kwargs"], action_mode=rl["adapter"]["action_mode"],
            prompt_format=rl["adapter"]["prompt_format"], adapter=rl["adapter"], temperature=rl["temperature"],
            rendered_for=rl["model"],
        )  # fmt: skip
    elif prepared.model_class == "causal_lm":  # usable as a policy: the adapter's defaults, the env's mode
        from lmrl.envs.adapter import AdapterConfig

        action_mode = "choose"
        if len(prepared.env_ids) == 1:
            from lmrl.envs.catalog import env_info
            from lmrl.errors import UnknownEnvError

            meta["env_id"] = prepared.env_ids[0]
            try:
                info = env_info(meta["env_id"])
            except UnknownEnvError:
                meta.pop("env_id")
            else:
                if info["kind"] not in ("aec", "parallel"):  # multi-agent envs act in choose mode
                    action_mode = info.get("default_action_mode") or "choose"
        # Room for every action the data offered (TicTacToe: 9), so the policy can pick any of them.
        adapter = AdapterConfig(
            action_mode=action_mode, max_candidates=max(AdapterConfig.max_candidates, prepared.max_admissible)
        )
        meta.update(action_mode=action_mode, prompt_format=adapter.prompt_format, adapter=adapter.to_dict(), temperature=1.0)
    return meta


def _finish(cfg, run: Path, result, meta_extra: dict[str, Any], seconds: float) -> Path:
    import torch

    rows = read_rows(run / METRICS_FILE)
    train, ev = latest_rows(rows)
    if result.checkpoint is None:
        raise RunError(f"training in {run} ended without a checkpoint; continue it with --resume {run}")
    with result.checkpoint.as_directory() as ckpt:
        steps = int(torch.load(Path(ckpt) / TRAIN_STATE_FILE, weights_only=False)["state"]["step"])
        meta = {
            **meta_extra,
            "steps": steps,
            "eval": {k: v for k, v in (ev[-1] if ev else {}).items() if k.startswith("eval_")},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        base = json.loads((run / DATA_FILE).read_text())["model_source"]
        model_dir = finalize_model(Path(ckpt), run / MODEL_DIR, meta, base=base)
    summary = {
        "run_dir": str(run),
        "model_dir": str(model_dir),
        "task": meta.get("task"),
        "steps": steps,
        "tokens": train[-1].get("tokens") if train else 0,
        "eval_first": {k: v for k, v in ev[0].items() if k.startswith("eval_")} if ev else {},
        "eval_last": meta["eval"],
        "attempts": max((r.get("attempt", 1) for r in rows), default=1),
        "seconds": round(seconds, 1),
    }
    write_json(run / SUMMARY_FILE, summary)
    curves = []
    if train:
        curves.append(Curve([r["step"] for r in train], [r["loss"] for r in train], "train loss", {"linewidth": 1}))
    if ev:
        curves.append(Curve([r["step"] for r in ev], [r["eval_loss"] for r in ev], "held-out loss", {"marker": "o"}))
    plot_curves([Panel("step", "loss", curves)], run / CURVE_FILE, title=f"{meta.get('task')} ({run.name})")
    return run
