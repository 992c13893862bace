"""The run directory: what every training run writes, RL (``lmrl train``) and Ray Train alike.

A run directory holds, whatever the run::

    config.yaml     the validated config (``--resume`` reads it back)
    state file      what ``--resume`` needs (``state.json`` for RL, ``data.json`` for Ray Train)
    metrics.jsonl   one JSON row per iteration or step
    *_curve.png     the learning curve (``learning_curve.png``, ``loss_curve.png``)
    summary.json    final figures

plus what the run itself produces (checkpoints, the exported model). This
module names those files and writes them; while a run trains,
:class:`RunProgress` shows a live bar on stderr, fed row by row by the driver
or by :class:`RowFollower` tailing ``metrics.jsonl`` when workers write it.

Example:
    >>> run = new_run_dir("runs", None, "Maze")  # runs/Maze-20260101-120000
    >>> check_free(run, "state.json", "lmrl train")
    >>> append_row(run / METRICS_FILE, {"iteration": 1, "loss": float("nan")})  # doctest: +SKIP
    >>> read_rows(run / METRICS_FILE)  # doctest: +SKIP
    [{'iteration': 1, 'loss': None}]
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lmrl.errors import RunError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


# --- the directory and its files ---------------------------------------------------------------


def new_run_dir(output_dir: str | Path, name: str | None, prefix: str) -> Path:
    """``output_dir/name``; without a name, ``output_dir/PREFIX-YYYYmmdd-HHMMSS``.

    Args:
        output_dir: The parent of run directories.
        name: The run's own name (``run.name``), if any.
        prefix: What starts a default name (the env, or the task).
    """
    return Path(output_dir) / (name or f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_free(run: Path, state_file: str, command: str) -> None:
    """Fails when ``run`` already holds a run (its ``state_file`` exists).

    Args:
        run: The run directory about to be written.
        state_file: The file only a started run has.
        command: The command that resumes it (``lmrl train``).

    Raises:
        RunError: The directory holds a run; the message says how to resume it.
    """
    if (run / state_file).exists():
        raise RunError(
            f"run directory `{run}` already holds a run; resume it with `{command} --resume {run}` "
            "or choose another run.name"
        )


def read_state(run: Path, state_file: str, written_by: str) -> dict[str, Any]:
    """The state a run directory keeps for ``--resume``.

    Args:
        run: The run directory to resume.
        state_file: Its state file (``state.json``, ``data.json``).
        written_by: The commands that write such directories, for the message.

    Raises:
        RunError: ``run`` holds no such file.
    """
    path = run / state_file
    if not path.is_file():
        raise RunError(
            f"cannot resume `{run}`: no {state_file} there; pass a run directory written by {written_by}"
        )
    return json.loads(path.read_text())


def config_to_yaml(cfg: BaseModel, order: Sequence[str] = ()) -> str:
    """The config as YAML that loads back to an equal config: every config lmrl writes.

    A run directory's ``config.yaml``, and ``lmrl config`` (:func:`lmrl.platform.config.dump_config`,
    which adds a header line). Text is written as it is, not escaped, so write it as UTF-8.

    Args:
        cfg: The validated config.
        order: Sections to write first, in this order (default: the model's field order).
    """
    raw = cfg.model_dump(mode="json", by_alias=True)  # aliases such as ``lambda``, so it loads back
    first = {k: raw[k] for k in order if k in raw}
    return yaml.safe_dump(
        {**first, **{k: v for k, v in raw.items() if k not in first}},
        sort_keys=False,
        allow_unicode=True,
    )


def write_json(path: Path, data: Any) -> None:
    """Writes ``data`` as indented JSON (state files, ``summary.json``)."""
    path.write_text(json.dumps(data, indent=2))


# --- metrics.jsonl -------------------------------------------------------------------------------


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Appends one JSON object as a line (non-finite floats become null, so the file stays JSON)."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(clean) + "\n")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics file (none if it does not exist; a line still being written is skipped)."""
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RowFollower:
    """Calls ``on_rows`` with each batch of new complete rows of a JSONL file, from a thread.

    For runs whose workers write ``metrics.jsonl`` while the driver blocks
    (Ray Train's ``fit()``). Disabled, it starts nothing.
    """

    def __init__(
        self,
        path: Path,
        on_rows: Callable[[list[dict[str, Any]]], None],
        enabled: bool = True,
        interval_s: float = 0.5,
    ) -> None:
        self.path, self.on_rows, self.enabled, self.interval_s = (
            Path(path),
            on_rows,
            enabled,
            interval_s,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RowFollower:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="lmrl-rows", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        offset = 0
        while not self._stop.wait(self.interval_s):
            if not self.path.exists():
                continue
            with open(self.path, encoding="utf-8") as f:  # read only what is new
                f.seek(offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            offset += len(complete.encode("utf-8"))
            rows = []
            for line in complete.splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            self.on_rows(rows)


# --- the live display ----------------------------------------------------------------------------


def figure(value: Any, spec: str = ".3f") -> str:
    """A figure for the display: ``value`` formatted, or ``-`` when there is none."""
    return "-" if value is None else format(value, spec)


class RunProgress:
    """``with RunProgress(title, total) as p: p.update(done, figures)``: a bar and the latest figures.

    The bar counts iterations or steps up to ``total`` (open-ended when
    ``None``) and is drawn on stderr. Disabled (``enabled=False``) it prints
    nothing.
    """

    def __init__(
        self,
        title: str,
        total: int | None,
        completed: int = 0,
        figures: str = "",
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            disable=not enabled,
        )
        self.task = self.progress.add_task(title, total=total, completed=completed, figures=figures)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, completed: int, figures: str) -> None:
        """Moves the bar to ``completed`` and shows ``figures``."""
        self.progress.update(self.task, completed=completed, figures=figures)

    def finish(self, reason: str | None) -> None:
        """Prints why training stopped."""
        if self.enabled and reason:
            self.console.print(f"[green]stopped:[/green] {reason}")


# --- the learning curve ------------------------------------------------------------------------


@dataclass
class Curve:
    """One line of a panel: points, a legend label, and matplotlib ``plot`` keywords."""

    xs: Sequence[float]
    ys: Sequence[float | None]
    label: str | None = None
    style: dict[str, Any] = field(default_factory=dict)


@dataclass
class Panel:
    """One plot of the figure: axis labels and its curves."""

    xlabel: str
    ylabel: str
    curves: list[Curve] = field(default_factory=list)


def plot_curves(panels: Sequence[Panel], out: Path, title: str = "") -> Path:
    """Writes the panels side by side as a PNG (the run's learning curve).

    Args:
        panels: One plot each; a curve with a label adds a legend.
        out: The PNG to write.
        title: Above the figure.

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(max(6, 5 * len(panels)), 3.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for c in panel.curves:
            ax.plot(c.xs, c.ys, label=c.label, **c.style)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        if any(c.label for c in panel.curves):
            ax.legend()
    if len(panels) == 1:
        axes[0][0].set_title(title)
    else:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
