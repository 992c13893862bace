"""A debug variable for Ray Train runs: one worker that dies on purpose, to check recovery.

``LMRL_TRAIN_INJECT_FAULT=RANK:STEP:MARKER`` makes the worker of rank RANK
exit hard (``os._exit``, as a lost node would) after optimiser step STEP,
once: it first writes the file MARKER, and no worker dies again while MARKER
exists, so the restarted group runs to the end. The driver reads the variable
when the run starts (docs/training.md, "Checkpoints, failures and
``--resume``"); the recovery test sets it.

Example:
    >>> Fault.parse("1:12:/tmp/killed")
    Fault(rank=1, step=12, marker='/tmp/killed')
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

__all__ = ["FAULT_ENV", "Fault"]

FAULT_ENV = "LMRL_TRAIN_INJECT_FAULT"


@dataclass(frozen=True)
class Fault:
    """Which worker dies, after which step, and the file that says it has."""

    rank: int
    step: int
    marker: str

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``RANK:STEP:MARKER`` as a fault."""
        rank, step, marker = text.split(":", 2)
        return cls(int(rank), int(step), marker)

    @classmethod
    def from_env(cls) -> Fault | None:
        """The fault ``LMRL_TRAIN_INJECT_FAULT`` asks for, or ``None``."""
        text = os.environ.get(FAULT_ENV)
        return cls.parse(text) if text else None

    def due(self, rank: int, step: int) -> bool:
        """Whether worker ``rank`` dies now, after ``step`` (only once: until the marker exists)."""
        return rank == self.rank and step == self.step and not os.path.exists(self.marker)

    def trigger(self, train_dir: Path, step: int, every: int) -> NoReturn:
        """Exits hard -- after the last checkpoint is committed, so the restart can use it.

        Ray Train registers a reported checkpoint when it next polls the workers
        (every ~2 s); a worker that dies sooner loses that checkpoint, as a real
        crash would, and the run restarts from the one before.

        Args:
            train_dir: Ray Train's run folder (its checkpoint snapshot is read).
            step: The step just taken.
            every: Steps between checkpoints.
        """
        name = f"step_{step // every * every:06d}"
        snapshot = train_dir / "checkpoint_manager_snapshot.json"
        committed = f'"latest_checkpoint_result":{{"version":0,"checkpoint_dir_name":"{name}"'
        deadline = time.monotonic() + 60
        while step >= every and time.monotonic() < deadline:
            if snapshot.exists() and committed in snapshot.read_text():
                break
            time.sleep(0.2)
        Path(self.marker).write_text(f"rank {self.rank} exited at step {step}\n")
        os._exit(1)
