"""The typed lmrl errors, as seen from the platform layer, and how the CLI prints them.

The errors themselves live in :mod:`lmrl.errors` so that ``lmrl.envs`` can
raise them without importing upward; this module re-exports them for users
of the platform API and adds :func:`format_error`.

Example:
    >>> format_error(ConfigError("`algorithm.lr` must be > 0, got -1 in config.yaml"))
    '`algorithm.lr` must be > 0, got -1 in config.yaml'
"""

from __future__ import annotations

from lmrl.errors import (
    ConfigError,
    EnvError,
    InvalidActionError,
    LmrlError,
    PolicyError,
    RegistrationError,
    RunError,
    UnknownEnvError,
    did_you_mean,
)

__all__ = [
    "ConfigError",
    "EnvError",
    "InvalidActionError",
    "LmrlError",
    "PolicyError",
    "RegistrationError",
    "RunError",
    "UnknownEnvError",
    "did_you_mean",
    "format_error",
]


def format_error(exc: BaseException) -> str:
    """Renders an error as the one line the CLI prints after ``error: ``.

    Args:
        exc: The error; for an :class:`LmrlError` its message, otherwise the
            message prefixed with the exception type.

    Returns:
        The message with all whitespace runs (newlines included) collapsed.
    """
    message = " ".join(str(exc).split())
    if isinstance(exc, LmrlError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
