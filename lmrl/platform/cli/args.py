"""Argument types and options that several ``lmrl`` commands share.

Example:
    >>> import argparse
import sys
from collections.abc import Sequence
from typing import Any
    >>> parser = argparse.ArgumentParser()
    >>> add_set_option(parser)
    >>> parser.add_argument("-n", type=positive_int)  # doctest: +ELLIPSIS
    _StoreAction(...)
    >>> parser.parse_args(["-n", "3", "--set", "algorithm.lr=0.01"])
    Namespace(set=['algorithm.lr=0.01'], n=3)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

#: The help of ``--set`` on the commands that take a run config.
SET_HELP = "override a config value, e.g. --set algorithm.lr=0.01 (repeatable; the value is YAML)"


class Parser(argparse.ArgumentParser):
    """The parser of every ``lmrl`` subcommand: argparse's, plus an optional pass-through.

    A parser made with ``pass_through="extra"`` keeps the arguments after ``--``
    unparsed, appended to ``namespace.extra`` (``lmrl submit TARGET --wait --
    -n 2``: they belong to the pipeline command). Plain argparse fills
    positionals in one go, so the ``-- -n 2`` after an option would be left
    unrecognised.

    Args:
        pass_through: The namespace attribute for the arguments after ``--``
            (a positional with ``nargs="*"`` of that name); None: plain argparse.
        **kwargs: What :class:`argparse.ArgumentParser` takes.
    """

    def __init__(self, pass_through: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pass_through = pass_through

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parses the arguments before ``--``; with ``pass_through``, those after it go to that attribute."""
        if self.pass_through is None:
            return super().parse_known_args(args, namespace)
        args = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, extra = args[:cut], args[cut + 1 :]
        namespace, unknown = super().parse_known_args(args, namespace)
        setattr(
            namespace, self.pass_through, list(getattr(namespace, self.pass_through) or []) + extra
        )
        return namespace, unknown


def add_set_option(
    parser: argparse.ArgumentParser, help_text: str = SET_HELP, dest: str = "set"
) -> None:
    """Adds the repeatable ``--set KEY=VALUE`` config override (a list, empty by default).

    Args:
        parser: The command's parser.
        help_text: The option's help line (it names an example key of that command's config).
        dest: The namespace attribute that receives the list.
    """
    parser.add_argument(
        "--set", dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def add_address(parser: argparse.ArgumentParser) -> None:
    """Adds ``--address URL``, the cluster's dashboard / Jobs API, to a cluster or jobs command."""
    parser.add_argument(
        "--address",
        metavar="URL",
        help="the cluster's dashboard / Jobs API, e.g. http://127.0.0.1:8265 (default: "
        "$RAY_API_SERVER_ADDRESS, $RAY_ADDRESS, the local head, http://127.0.0.1:8265)",
    )


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port number, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (1-65535), got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
