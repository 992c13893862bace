"""The ``lmrl`` command line, one module per command group.

:mod:`~lmrl.platform.cli.app` builds the parser and turns errors into exit
codes; :mod:`~lmrl.platform.cli.output` and :mod:`~lmrl.platform.cli.args`
hold what the command modules share. ``python -m lmrl.platform.cli`` is the
same as ``lmrl``.

Example:
    >>> from lmrl.platform.cli import main
    >>> main(["config"])  # doctest: +SKIP
"""

from lmrl.platform.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
