"""Typed errors for everything a user can get wrong.

One module, imported by every layer (it imports nothing from lmrl), in the
manner of Gymnasium's ``gymnasium.error``. Each message says what was wrong,
the offending value, and how to fix it. The CLI prints ``str(error)`` on one
line with no traceback for any :class:`LmrlError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LmrlError(Exception):
    """Base class of all user-facing lmrl errors."""


class ConfigError(LmrlError, ValueError):
    """A run config (YAML file, ``--set`` override or keyword) is invalid."""


class EnvError(LmrlError):
    """Base class for environment catalog errors."""


class UnknownEnvError(EnvError, KeyError):
    """An env id is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class RegistrationError(EnvError, ValueError):
    """An env could not be registered (duplicate or malformed id, bad entry point, non-text spaces)."""


class InvalidActionError(EnvError, TypeError):
    """An env was given an action that is not text."""


class PolicyError(LmrlError):
    """A policy (model directory, hub id, export) cannot be loaded or used."""


class RunError(LmrlError):
    """A run directory, checkpoint or resume request is invalid."""


class ClusterError(LmrlError):
    """A cluster config, address, token or job request is invalid, or the cluster refused it."""


class DataError(LmrlError, ValueError):
    """A training data file is missing, malformed, or holds a bad row (the message names file and row)."""


def did_you_mean(value: str, choices: Iterable[str], n: int = 1) -> str:
    """Returns ``" Did you mean `x`?"`` for the closest choice, or ``""`` if none is close.

    Args:
        value: What the user typed.
        choices: The valid values.
        n: How many suggestions to offer at most.

    Example:
        >>> did_you_mean("lmrl/Maz-v0", ["lmrl/Maze-v0"])
        ' Did you mean `lmrl/Maze-v0`?'
    """
    close = difflib.get_close_matches(value, list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
