"""Reaching a Ray cluster: the auth token it wants, and whether anything answers at its address.

Ray 2.60 clusters started with ``ray start --head`` enforce token auth on the
GCS, the dashboard and the Jobs API. lmrl finds the token the way Ray does
(``RAY_AUTH_TOKEN``, then the file named by ``RAY_AUTH_TOKEN_PATH``, then
``~/.ray/auth_token``) and hands it on without touching this process's
environment: as an ``Authorization`` header for HTTP clients
(:func:`auth_headers`), or as the variables a Ray process needs
(:func:`ray_auth_env`), which :func:`lmrl.runtime.init_ray` sets in its own
environment before it joins a cluster.

Example:
    >>> env = {"RAY_AUTH_TOKEN": "s3cret"}
    >>> auth_headers(env)
    ({'Authorization': 'Bearer s3cret'}, 'RAY_AUTH_TOKEN')
    >>> ray_auth_env(env)
    {'RAY_AUTH_MODE': 'token'}
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from lmrl.errors import ClusterError

__all__ = [
    "TOKEN_FIX",
    "auth_headers",
    "discover_token",
    "ray_auth_env",
    "unreachable_reason",
]

#: How to give lmrl the cluster's token; ends the messages of auth failures.
TOKEN_FIX = (
    "export RAY_AUTH_TOKEN=<the cluster's token>, point RAY_AUTH_TOKEN_PATH at its file, or put "
    "it in ~/.ray/auth_token (on the head node, `ray get-auth-token` prints it)"
)


def discover_token(environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Finds the Ray auth token the way Ray does: env var, then token file, then ``~/.ray/auth_token``.

    Args:
        environ: The environment to read (default: this process's).

    Returns:
        ``(token, source)``: the token (``None`` when there is none) and where
        it came from (``"RAY_AUTH_TOKEN"``, ``"RAY_AUTH_TOKEN_PATH=/path"``,
        ``"~/.ray/auth_token"``), or where it was looked for.

    Raises:
        ClusterError: ``RAY_AUTH_TOKEN_PATH`` names a file that does not exist or is empty.
    """
    env = os.environ if environ is None else environ
    token = env.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token, "RAY_AUTH_TOKEN"
    path_text = env.get("RAY_AUTH_TOKEN_PATH", "").strip()
    if path_text:
        path = Path(path_text).expanduser()
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if not text:
            raise ClusterError(
                f"RAY_AUTH_TOKEN_PATH={path_text} "
                f"{'is empty' if path.is_file() else 'does not exist'}; {TOKEN_FIX}"
            )
        return text, f"RAY_AUTH_TOKEN_PATH={path_text}"
    home = env.get("HOME") or str(Path.home())
    default = Path(home) / ".ray" / "auth_token"
    if default.is_file():
        text = default.read_text(encoding="utf-8").strip()
        if text:
            return text, "~/.ray/auth_token"
    return None, "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH and ~/.ray/auth_token (none set)"


def _auth_disabled(env: Mapping[str, str]) -> bool:
    return env.get("RAY_AUTH_MODE", "").lower() == "disabled"


def auth_headers(environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """The HTTP headers that authenticate to a cluster's dashboard and Jobs API.

    Args:
        environ: The environment to read (default: this process's).

    Returns:
        ``(headers, source)``: ``{"Authorization": "Bearer <token>"}``, or ``{}``
        when there is no token or ``RAY_AUTH_MODE=disabled``; and where the
        token came from (or where it was looked for).

    Raises:
        ClusterError: ``RAY_AUTH_TOKEN_PATH`` names a missing or empty file.
    """
    env = os.environ if environ is None else environ
    token, source = discover_token(env)
    if token is None or _auth_disabled(env):
        return {}, source
    return {"Authorization": f"Bearer {token}"}, source


def ray_auth_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a Ray process needs to send the token: ``{"RAY_AUTH_MODE": "token"}`` or ``{}``.

    Ray reads its auth mode only from the environment, and when it connects to
    a cluster by address it never switches token mode on by itself. This
    switches it on when a token is available and the user chose no mode; an
    explicit ``RAY_AUTH_MODE`` is always kept. In a process that has imported
    Ray, the variable must stay set and Ray's config be re-read
    (:func:`lmrl.runtime.init_ray` does both).

    Args:
        environ: The environment the Ray process would otherwise get (default: this process's).

    Returns:
        The variables to add to that environment (empty when nothing is needed).

    Raises:
        ClusterError: ``RAY_AUTH_TOKEN_PATH`` names a missing or empty file.
    """
    env = os.environ if environ is None else environ
    if "RAY_AUTH_MODE" in env or discover_token(env)[0] is None:
        return {}
    return {"RAY_AUTH_MODE": "token"}


def unreachable_reason(host: str, port: int, timeout_s: float) -> str | None:
    """Why nothing accepts a TCP connection at ``host:port``, or ``None`` when something does.

    Ray's own clients retry an unreachable address for a minute or more; this
    answers within ``timeout_s``.

    Args:
        host: A host name or IP address (IPv6 with or without brackets).
        port: The TCP port.
        timeout_s: How long to wait for the connection.

    Returns:
        ``None`` when the connection was accepted, else the reason
        (``"Connection refused"``, ``"timed out"``, ...).
    """
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
