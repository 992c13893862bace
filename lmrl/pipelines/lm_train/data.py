"""Training data: files -> validated rows -> token sequences, on the driver and in Ray Data.

One function, :func:`encode_rows`, turns rows into fixed-length token arrays.
The driver runs it once over every file (:func:`scan`), streaming with
pyarrow, so a bad row fails *before* anything is written, with the file and
the row (``corpus.jsonl line 7``, ``demos.parquet row 12``). The workers run
the same function inside a Ray Data pipeline (:func:`build_dataset`), which
reads the files, tokenises as a stream, packs, and is split across Ray Train
workers (each reads its own ``get_dataset_shard``).

Row kinds and the arrays they become (``L`` = ``data.max_length``):

=============  ==========================================  =======================================
kind           columns                                     arrays
=============  ==========================================  =======================================
``causal``     ``text``                                    ``input_ids``, ``attention_mask``,
                                                           ``labels`` (L,) -- packed: EOS-joined
                                                           documents cut into L-token blocks
``sft``        ``prompt`` + ``response``, or ``messages``  same; labels ``-100`` on the prompt
``rm_labels``  [``prompt``] + ``response`` + ``label``     ``input_ids``, ``attention_mask``,
                                                           ``label``
``rm_pairs``   [``prompt``] + ``chosen`` + ``rejected``    ``chosen_*`` and ``rejected_*``
=============  ==========================================  =======================================

Prompt and response are tokenised *separately* and EOS is appended to the
response, exactly as the policy adapter scores an action
(:mod:`lmrl.envs.adapter`), so a fine-tuned model sees the token boundaries it
will act with.
"""

from __future__ import annotations

import functools
import glob
import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmrl.errors import DataError

Kind = Literal["causal", "sft", "rm_labels", "rm_pairs"]
IGNORE = -100
_EXTENSIONS = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_READ_BATCH = 1024


@dataclass(frozen=True)
class Spec:
    """How rows become examples; picklable, shipped to Ray Data tasks.

    Attributes:
        kind: The row kind (see the module docstring).
        columns: Logical name (``text``, ``prompt``, ...) -> column in the files.
        max_length: Tokens per sequence.
        pack: ``causal`` only: concatenate documents and cut blocks.
        tokenizer_dir: Where the tokenizer was saved (loaded once per process).
        eval_fraction: Share of rows held out when no eval files are given.
    """

    kind: Kind
    columns: dict[str, str]
    max_length: int
    pack: bool = False
    tokenizer_dir: str = ""
    eval_fraction: float = 0.0


@dataclass
class DataSummary:
    """What :func:`scan` found."""

    files: list[str]
    rows: int = 0
    examples: int = 0
    tokens: int = 0
    split_rows: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    env_ids: set[str] = field(default_factory=set)
    max_admissible: int = 0  # the most actions any row offered (``admissible`` column of collected data)


# --- files -----------------------------------------------------------------------------------


def resolve_files(patterns: Sequence[str], fmt: str, key: str) -> list[tuple[Path, str]]:
    """Expands globs into ``(path, format)`` pairs, one format for all.

    Args:
        patterns: Paths or globs from the config.
        fmt: ``auto`` or a format name.
        key: The config key, named in errors (``data.train``).

    Raises:
        DataError: A pattern matches nothing, or a format is unknown or mixed.
    """
    out: list[tuple[Path, str]] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if not Path(m).is_dir()] or matches
        if not matches or not Path(matches[0]).exists():
            raise DataError(f"{key}: no file matches `{pattern}`; check the path (relative to {Path.cwd()})")
        for m in matches:
            path = Path(m)
            if path.is_dir():
                raise DataError(f"{key}: `{m}` is a directory; give files or a glob such as {m}/*.parquet")
            kind = fmt if fmt != "auto" else _EXTENSIONS.get(path.suffix.lower())
            if kind is None:
                raise DataError(
                    f"{key}: cannot tell the format of `{m}` from its extension; use .txt, .jsonl or "
                    "or .parquet, or set data.format"
                )
            out.append((path, kind))
    kinds = sorted({k for _, k in out})
    if len(kinds) > 1:
        raise DataError(f"{key} mixes formats ({', '.join(kinds)}); give files of one format per list")
    return out


def _row_label(path: Path, fmt: str, number: int) -> str:
    return f"{path} {'row' if fmt == 'parquet' else 'line'} {number}"


def iter_batches(path: Path, fmt: str, wanted: Sequence[str]) -> Iterator[tuple[list[int], dict[str, list]]]:
    """Streams ``(row numbers, {column: values})`` from one file; absent columns are left out.

    Row numbers count from 1: lines for text and JSONL (blank lines skipped),
    rows for Parquet.

    Raises:
        DataError: The file cannot be read or parsed, naming the file (and line).
    """
    if fmt == "parquet":
        yield from _parquet_batches(path, wanted)
        return
    numbers: list[int] = []
    cols: dict[str, list] = {}
    try:
        with open(path, encoding="utf-8") as f:
            # str.splitlines, as Ray Data's read_text splits (so both see the same rows)
            pieces = ((number, piece) for number, raw in enumerate(f, 1) for piece in raw.splitlines())
            for number, line in pieces:
                if not line.strip():
                    continue
                if fmt == "text":
                    row = {"text": line}
                else:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path} line {number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
                    if not isinstance(row, dict):
                        raise DataError(f"{path} line {number}: expected a JSON object, got {type(row).__name__}")
                if not cols:
                    cols = {c: [] for c in wanted if c in row}
                    if not cols:
                        raise DataError(
                            f"{_row_label(path, fmt, number)}: none of the columns {', '.join(wanted)} is there "
                            f"(keys: {', '.join(map(str, row)) or 'none'}); set the data.*_column keys"
                        )
                for c in cols:
                    if c not in row:
                        raise DataError(f"{path} line {number}: no key `{c}` (keys: {', '.join(map(str, row))})")
                    cols[c].append(row[c])
                numbers.append(number)
                if len(numbers) >= _READ_BATCH:
                    yield numbers, cols
                    numbers, cols = [], {c: [] for c in cols}
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); convert it or use Parquet") from None
    if numbers:
        yield numbers, cols


def _parquet_batches(path: Path, wanted: Sequence[str]) -> Iterator[tuple[list[int], dict[str, list]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a valid Parquet file ({first_line(exc)}); rewrite it with "
            "pyarrow.parquet.write_table, or use .jsonl"
        ) from None
    present = [c for c in wanted if c in pf.schema_arrow.names]
    if not present:
        raise DataError(
            f"{path}: none of the columns {', '.join(wanted)} is there (columns: "
            f"{', '.join(pf.schema_arrow.names)}); set the data.*_column keys"
        )
    start = 0
    try:
        for batch in pf.iter_batches(batch_size=_READ_BATCH, columns=present):
            yield list(range(start + 1, start + batch.num_rows + 1)), {c: batch.column(c).to_pylist() for c in present}
            start += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path} after row {start}: cannot read the Parquet data ({first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when empty), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- rows -> examples ------------------------------------------------------------------------


def wanted_columns(spec: Spec) -> list[str]:
    """The file columns a spec reads."""
    return list(dict.fromkeys(spec.columns.values()))


def detect_kind(task: str, present: set[str], cols: dict[str, str], path: Path) -> tuple[Kind, dict[str, str]]:
    """Chooses the row kind of a fine-tuning file from its columns.

    Returns:
        The kind and the logical -> file column mapping it uses.

    Raises:
        DataError: The columns fit no kind, naming the file and what is missing.
    """
    if task == "sft":
        if cols["prompt"] in present and cols["response"] in present:
            return "sft", {"prompt": cols["prompt"], "response": cols["response"]}
        if cols["messages"] in present:
            return "sft", {"messages": cols["messages"]}
        missing = [cols[k] for k in ("prompt", "response") if cols[k] not in present]
        raise DataError(
            f"{path}: missing column {', '.join(f'`{m}`' for m in missing)} (columns: "
            f"{', '.join(sorted(present))}); sft needs prompt + response, or messages "
            "(set data.prompt_column / data.response_column / data.messages_column)"
        )
    prompt = {"prompt": cols["prompt"]} if cols["prompt"] in present else {}
    if cols["chosen"] in present and cols["rejected"] in present:
        return "rm_pairs", {**prompt, "chosen": cols["chosen"], "rejected": cols["rejected"]}
    if cols["response"] in present and cols["label"] in present:
        return "rm_labels", {**prompt, "response": cols["response"], "label": cols["label"]}
    raise DataError(
        f"{path}: reward_model data needs `{cols['response']}` + `{cols['label']}` or `{cols['chosen']}` + "
        f"`{cols['rejected']}` columns, got {', '.join(sorted(present))}; set the data.*_column keys"
    )


def file_columns(path: Path, fmt: str) -> set[str]:
    """The column names of a file (keys of the first JSONL row; ``text`` for text files).

    Raises:
        DataError: The file is not valid Parquet / JSON.
    """
    if fmt == "text":
        return {"text"}
    if fmt == "jsonl":
        return jsonl_keys(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return set(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: not a valid Parquet file ({first_line(exc)}); rewrite it with "
            "pyarrow.parquet.write_table, or use .jsonl"
        ) from None


def jsonl_keys(path: Path) -> set[str]:
    """The keys of the first JSON object in a JSONL file (empty set for an empty file)."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
                return set(row) if isinstance(row, dict) else set()
    return set()


def chat_to_pair(messages: Any) -> tuple[str, str] | str:
    """``[{role, content}, ...]`` -> (prompt, response), or a problem description.

    The prompt lists every turn but the last as ``Role: content`` lines and
    ends with ``Assistant:``; the response is `` `` + the last (assistant) turn.
    """
    if not isinstance(messages, list) or not messages:
        return f"`messages` must be a non-empty list of {{role, content}}, got {_show(messages)}"
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return f"each message needs text `role` and `content`, got {_show(m)}"
    if messages[-1]["role"] != "assistant":
        return f"the last message must be the assistant's (the response), got role {messages[-1]['role']!r}"
    prompt = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages[:-1]) + "Assistant:"
    return prompt, " " + messages[-1]["content"]


def _show(value: Any) -> str:
    text = repr(value)
    return (text[:40] + "...") if len(text) > 43 else text


def split_key(row: dict[str, Any]) -> str:
    """The text whose hash assigns a row to train or eval."""
    return "\x00".join(str(row.get(k, "")) for k in ("text", "prompt", "response", "chosen", "rejected"))


def in_eval(key: str, fraction: float) -> bool:
    """Deterministic held-out membership: a CRC32 of the row's text."""
    return fraction > 0.0 and (zlib.crc32(key.encode("utf-8")) % 10_000) < fraction * 10_000


def logical_rows(spec: Spec, cols: dict[str, list]) -> list[dict[str, Any] | str | None]:
    """File columns -> logical rows (``prompt``, ``response``...).

    Returns:
        Per row: the logical row, a problem string (a null, a non-text value,
        a label out of range, a malformed chat), or ``None`` for a row to skip
        (a ``causal`` row with empty text).
    """
    n = len(next(iter(cols.values()))) if cols else 0
    out: list[dict[str, Any] | str | None] = []
    for i in range(n):
        row: dict[str, Any] = {}
        problem: str | None = None
        for logical, column in spec.columns.items():
            value = cols[column][i] if column in cols else None
            if logical == "messages":
                pair = chat_to_pair(value)
                if isinstance(pair, str):
                    problem = pair
                    break
                row["prompt"], row["response"] = pair
            elif logical == "label":
                if isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, int | float) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                    problem = f"`{column}` must be a number in [0, 1], got {'null' if value is None else _show(value)}"
                    break
                row["label"] = float(value)
            elif not isinstance(value, str):
                problem = f"`{column}` must be text, got {'null' if value is None else _show(value)}"
                break
            else:
                row[logical] = value
        if problem is None and spec.kind == "causal" and not row["text"].strip():
            out.append(None)
        else:
            out.append(problem if problem is not None else row)
    return out


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str):
    """The tokenizer saved at ``path`` (cached per process)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def encode_rows(
    spec: Spec, tokenizer, rows: list[dict[str, Any]]
) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """Tokenises logical rows into fixed-length ``int32`` arrays (see the module docstring).

    Args:
        spec: The row kind and lengths.
        tokenizer: Any HF tokenizer with ``eos_token_id`` (and ``pad_token_id``).
        rows: Logical rows.

    Returns:
        The arrays (rows with a problem left out) and, per input row, ``None``
        or the problem that makes it unusable: longer than the context, or an
        empty response.
    """
    L, eos = spec.max_length, int(tokenizer.eos_token_id)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)

    def ids(texts: list[str]) -> list[list[int]]:
        return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    problems: list[str | None] = [None] * len(rows)
    if spec.kind == "causal" and spec.pack:
        flat = [t for doc in ids([r["text"] for r in rows]) for t in [*doc, eos]]
        n = len(flat) // L
        block = np.asarray(flat[: n * L], dtype=np.int32).reshape(n, L)
        return {"input_ids": block, "attention_mask": np.ones_like(block), "labels": block.copy()}, problems
    if spec.kind in ("causal", "sft"):
        if spec.kind == "causal":
            prompts, responses = [[] for _ in rows], ids([r["text"] for r in rows])
        else:
            prompts, responses = ids([r["prompt"] for r in rows]), ids([r["response"] for r in rows])
        seqs, starts = [], []
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            what = "the text" if spec.kind == "causal" else "prompt + response"
            if not r:
                problems[i] = "the response is empty"
            elif len(p) + len(r) + 1 > L:
                problems[i] = _too_long(what, len(p) + len(r) + 1, L)
            seqs.append(p + r + [eos])
            starts.append(len(p))
        out = _pad(seqs, L, pad)
        labels = np.where(out["attention_mask"] == 1, out["input_ids"], IGNORE).astype(np.int32)
        for i, start in enumerate(starts):
            labels[i, :start] = IGNORE  # no loss on the prompt
        out["labels"] = labels
    elif spec.kind == "rm_labels":
        seqs = _with_prompt(ids, rows, "response", eos)
        for i, s in enumerate(seqs):
            if len(s) > L:
                problems[i] = _too_long("prompt + response", len(s), L)
        out = _pad(seqs, L, pad)
        out["label"] = np.asarray([r["label"] for r in rows], dtype=np.float32)
    else:  # rm_pairs
        chosen, rejected = _with_prompt(ids, rows, "chosen", eos), _with_prompt(ids, rows, "rejected", eos)
        for i, (c, r) in enumerate(zip(chosen, rejected, strict=True)):
            if max(len(c), len(r)) > L:
                problems[i] = _too_long("prompt + chosen/rejected", max(len(c), len(r)), L)
        a, b = _pad(chosen, L, pad), _pad(rejected, L, pad)
        out = {
            "chosen_ids": a["input_ids"],
            "chosen_mask": a["attention_mask"],
            "rejected_ids": b["input_ids"],
            "rejected_mask": b["attention_mask"],
        }
    keep = np.asarray([p is None for p in problems], dtype=bool)
    return {k: v[keep] for k, v in out.items()}, problems


def _too_long(what: str, n: int, limit: int) -> str:
    return (
        f"{what} is {n} tokens (EOS included), longer than data.max_length ({limit}); "
        "raise data.max_length or shorten the row"
    )


def _with_prompt(ids, rows: list[dict[str, Any]], key: str, eos: int) -> list[list[int]]:
    prompts = ids([r.get("prompt", "") for r in rows])
    answers = ids([r[key] for r in rows])
    return [p + a + [eos] for p, a in zip(prompts, answers, strict=True)]


def _pad(seqs: list[list[int]], L: int, pad: int) -> dict[str, np.ndarray]:
    ids = np.full((len(seqs), L), pad, dtype=np.int32)
    mask = np.zeros((len(seqs), L), dtype=np.int32)
    for i, s in enumerate(seqs):
        s = s[:L]
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


# --- the driver's pass: validate everything before anything is written ------------------------


def _checked_batches(spec: Spec, path: Path, fmt: str, extra: Sequence[str] = ()):
    """``(row labels, logical rows, extra columns)`` per batch; a bad row raises naming file and row."""
    wanted = wanted_columns(spec)
    for numbers, cols in iter_batches(path, fmt, [*wanted, *extra]):
        missing = [c for c in wanted if c not in cols]
        if missing:
            raise DataError(
                f"{path}: missing column {', '.join(f'`{m}`' for m in missing)} (columns: "
                f"{', '.join(sorted(cols)) or 'none'}); set the data.*_column keys to the columns it has"
            )
        rows = logical_rows(spec, cols)
        labels = [_row_label(path, fmt, n) for n in numbers]
        for label, row in zip(labels, rows, strict=True):
            if isinstance(row, str):
                raise DataError(f"{label}: {row}")
        yield labels, rows, {c: cols[c] for c in extra if c in cols}


def iter_texts(spec: Spec, files: Sequence[tuple[Path, str]]) -> Iterator[str]:
    """Every text of every valid row (for training a tokenizer); bad rows raise :class:`DataError`."""
    for path, fmt in files:
        for _, rows, _ in _checked_batches(spec, path, fmt):
            for row in rows:
                if isinstance(row, dict):
                    yield from (v for k, v in row.items() if k != "label" and isinstance(v, str))


def scan(spec: Spec, files: Sequence[tuple[Path, str]], tokenizer, split: bool, key: str) -> DataSummary:
    """Reads and tokenises every row once, streaming, and counts what training will see.

    Args:
        spec: The row kind and lengths.
        files: From :func:`resolve_files`.
        tokenizer: The tokenizer training will use.
        split: Whether rows are split into train/eval by :func:`in_eval`
            (else all count as ``train``).
        key: The config key naming the files (``data.train``), for errors.

    Returns:
        Row, example and token counts, and the ``env_id`` values seen.

    Raises:
        DataError: The first bad row (file and row named), or no rows at all.
    """
    summary = DataSummary(files=[str(p) for p, _ in files])
    for path, fmt in files:
        for labels, rows, extra in _checked_batches(spec, path, fmt, extra=("env_id", "admissible")):
            valid = [(label, row) for label, row in zip(labels, rows, strict=True) if isinstance(row, dict)]
            arrays, problems = encode_rows(spec, tokenizer, [row for _, row in valid])
            for (label, _), problem in zip(valid, problems, strict=True):
                if problem is not None:
                    raise DataError(f"{label}: {problem}")
            for _, row in valid:
                side = "eval" if split and in_eval(split_key(row), spec.eval_fraction) else "train"
                summary.split_rows[side] += 1
            summary.rows += len(valid)
            summary.examples += len(next(iter(arrays.values())))
            mask = arrays.get("attention_mask", arrays.get("chosen_mask"))
            summary.tokens += int(mask.sum()) if mask is not None else 0
            summary.env_ids.update(str(e) for e in extra.get("env_id", []) if e is not None)
            offered = [len(a) for a in extra.get("admissible", []) if isinstance(a, (list, tuple))]
            summary.max_admissible = max([summary.max_admissible, *offered])
    if summary.rows == 0:
        names = ", ".join(summary.files)
        raise DataError(
            f"{key}: no rows with text in {names} (empty file{'s' if len(files) > 1 else ''}); "
            "give a file with data"
        )
    return summary


# --- the workers' stream: Ray Data -------------------------------------------------------------


def build_dataset(spec: Spec, files: Sequence[tuple[Path, str]], split: Literal["train", "eval", "all"]):
    """A Ray Data dataset of encoded examples, read and tokenised as a stream.

    Args:
        spec: The row kind and lengths (its tokenizer is loaded in each data task).
        files: From :func:`resolve_files` (validated by :func:`scan`).
        split: ``train`` / ``eval`` keep one side of :func:`in_eval`; ``all`` keeps every row.
    """
    import ray.data

    paths = [str(Path(p).resolve()) for p, _ in files]
    fmt = files[0][1]
    if fmt == "parquet":
        ds = ray.data.read_parquet(paths, columns=wanted_columns(spec))
    else:  # JSONL is parsed by the same json.loads as the driver's pass, not pyarrow's reader
        ds = ray.data.read_text(paths, drop_empty_lines=True)
    fn = functools.partial(_encode_batch, spec=spec, fmt=fmt, split=split)
    return ds.map_batches(fn, batch_format="pyarrow", batch_size=_READ_BATCH)


def _encode_batch(batch, *, spec: Spec, fmt: str, split: str) -> dict[str, np.ndarray]:
    wanted = wanted_columns(spec)
    if fmt == "parquet":
        cols = {c: batch.column(c).to_pylist() for c in wanted if c in batch.column_names}
    elif fmt == "jsonl":
        records = [json.loads(line) for line in batch.column("text").to_pylist()]
        cols = {c: [r.get(c) for r in records] for c in wanted}
    else:
        cols = {"text": batch.column("text").to_pylist()}
    rows = [r for r in logical_rows(spec, cols) if isinstance(r, dict)]
    if split != "all":
        rows = [r for r in rows if in_eval(split_key(r), spec.eval_fraction) == (split == "eval")]
    arrays, _ = encode_rows(spec, load_tokenizer(spec.tokenizer_dir), rows)
    return arrays
