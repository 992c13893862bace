"""API keys: where the key comes from, and checking ``Authorization: Bearer`` in constant time.

The key is resolved once, by ``lmrl serve``: from ``--api-key-file``, else
the ``LMRL_API_KEY`` environment variable, else a new random key that is
printed once. The deployment receives only the key's SHA-256 digest, so the
key itself never lands in the Serve config, the cluster's state or a log.

Example:
    >>> key, generated = resolve_api_key(None, {"LMRL_API_KEY": "s3cret"})
    >>> check_authorization("Bearer s3cret", key_digest(key))
    True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from lmrl.errors import ConfigError

#: Environment variable holding the API key.
API_KEY_ENV = "LMRL_API_KEY"
#: Prefix of generated keys (makes them recognisable in a leak scanner).
KEY_PREFIX = "lmrl-"


def generate_api_key() -> str:
    """A new random key: ``lmrl-`` plus 32 URL-safe characters (192 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def key_digest(key: str) -> str:
    """The hex SHA-256 digest the deployment compares against."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_key_file(path: str | Path) -> str:
    """The key stored in a file (surrounding whitespace removed).

    Raises:
        ConfigError: The file is missing, unreadable or empty.
    """
    p = Path(path).expanduser()
    try:
        key = p.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"--api-key-file {path}: no such file; write the key into it, or set {API_KEY_ENV}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--api-key-file {path}: cannot read it ({exc}); pass a readable text file") from None
    if not key:
        raise ConfigError(f"--api-key-file {path} is empty; write the API key into it")
    return key


def resolve_api_key(key_file: str | Path | None, environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """The API key to require, and whether it was generated now.

    Args:
        key_file: A file holding the key (wins over the environment).
        environ: The environment to read ``LMRL_API_KEY`` from (default: ``os.environ``).

    Returns:
        ``(key, generated)``; print a generated key to the user once.
    """
    if key_file is not None:
        return read_key_file(key_file), False
    env = os.environ if environ is None else environ
    key = env.get(API_KEY_ENV, "").strip()
    if key:
        return key, False
    return generate_api_key(), True


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_authorization(authorization: str | None, digest: str) -> bool:
    """True if the header carries the key whose digest is ``digest``.

    The digests are compared with :func:`hmac.compare_digest`, in constant time.
    """
    token = bearer_token(authorization)
    presented = key_digest(token if token is not None else "")
    return hmac.compare_digest(presented, digest) and token is not None
