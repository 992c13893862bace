"""What the ``lmrl`` commands print: rich consoles and tables, and cell formats.

Every command prints through these, so tables look alike and env text with
brackets never turns into rich markup. rich is imported when a command
prints, not when the parser is built.

Example:
    >>> t = table("rollout: lmrl/Maze-v0", ["policy", "success rate"])
    >>> t.add_row("random", rate(0.25))
    >>> console().print(t)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text


def console(soft_wrap: bool = False, width: int | None = None) -> Console:
    """A console on stdout.

    Args:
        soft_wrap: Let long lines run on instead of wrapping them at the width.
        width: A fixed width (default: the terminal's, 80 when piped).
    """
    from rich.console import Console

    return Console(soft_wrap=soft_wrap, width=width)


def table(title: str, columns: Sequence[str], show_header: bool = True) -> Table:
    """A table with a left-aligned title and these column headers.

    Args:
        title: The title above the table.
        columns: The column headers, in order.
        show_header: Whether to show the header row (off for key/value tables).
    """
    from rich.table import Table

    result = Table(title=title, show_header=show_header, title_justify="left")
    for column in columns:
        result.add_column(column)
    return result


def plain(text: str) -> Text:
    """Cell text shown as is (no rich markup: env text may contain brackets)."""
    from rich.text import Text

    return Text(text)


def cell(value: Any) -> Text:
    """A value as plain cell text: ``-`` for None, floats with three decimals."""
    if value is None:
        return plain("-")
    if isinstance(value, float):
        return plain(number(value))
    return plain(str(value))


def first_line(doc: str) -> Text:
    """The first non-empty line of a docstring, as plain cell text."""
    return plain(next((line.strip() for line in doc.splitlines() if line.strip()), ""))


def rate(value: Any) -> str:
    """A fraction as a percentage with one decimal (``-`` for None)."""
    return "-" if value is None else f"{100 * float(value):.1f}%"


def number(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (``-`` for None; anything else as is)."""
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def when(ms: int | None) -> str:
    """A Unix time in milliseconds as local ``YYYY-mm-dd HH:MM:SS`` (``-`` for none)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def duration(start_ms: int | None, end_ms: int | None) -> str:
    """Seconds (minutes from two minutes on) between two millisecond times; until now if not ended."""
    if not start_ms:
        return "-"
    seconds = ((end_ms or time.time() * 1000) - start_ms) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
