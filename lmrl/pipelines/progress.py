"""The live training display: a rich progress bar plus the latest figures."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lmrl.pipelines.config import RunConfig


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


class TrainingProgress:
    """``with TrainingProgress(cfg) as p: p.update(row)`` for each iteration.

    The bar counts iterations when ``run.stop.iterations`` is set, else it is
    open-ended. Disabled (``enabled=False``) it prints nothing.
    """

    def __init__(self, cfg: RunConfig, enabled: bool = True, start_iteration: int = 0, console: Console | None = None):
        self.cfg = cfg
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
        self.task = self.progress.add_task(
            f"train {cfg.env.id} ({cfg.policy.action_mode})",
            total=cfg.run.stop.iterations,
            completed=start_iteration,
            figures="",
        )

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, row: dict[str, Any]) -> None:
        """Advances one iteration and shows its figures."""
        figures = (
            f"return {_fmt(row.get('episode_return_mean'))}  success {_fmt(row.get('success_rate'), '.2f')}  "
            f"steps {row['timesteps']}"
        )
        self.progress.update(self.task, completed=row["iteration"], figures=figures)

    def finish(self, reason: str | None) -> None:
        """Prints why training stopped."""
        if self.enabled and reason:
            self.console.print(f"[green]stopped:[/green] {reason}")
