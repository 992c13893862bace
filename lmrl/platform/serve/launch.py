"""Starting Serve on a Ray and deploying a policy: what ``lmrl serve`` and the tests call.

Ray itself is started (or joined) by :func:`lmrl.runtime.init_ray`, as for every run.

Example:
    >>> config = ServeConfig(policy="/abs/runs/cs/export", api_key_sha256=key_digest("s3cret"))
    >>> init_ray()  # doctest: +SKIP
    >>> url = deploy(config, port=8000)  # doctest: +SKIP
    >>> url
    'http://127.0.0.1:8000'
"""

from __future__ import annotations

import socket

from lmrl.errors import LmrlError, RunError
from lmrl.platform.serve.config import APP_NAME, ServeConfig


def check_port_free(host: str, port: int) -> None:
    """Fails with a one-line error if ``host:port`` is taken (Serve would only log and retry).

    Raises:
        RunError: Something already listens there, or the host is not an address of this machine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise RunError(
                f"cannot serve on {host}:{port}: {reason}; pass a free --port (or stop what listens there)"
            ) from None


def metrics_url() -> str | None:
    """The Prometheus endpoint of this process's Ray node, if known."""
    try:
        import ray

        node = ray._private.worker.global_worker.node
        return f"http://{node.node_ip_address}:{node.metrics_export_port}/metrics"
    except Exception:  # not started, or Ray's internals moved: the docs say where to look
        return None


def deploy(
    config: ServeConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    name: str = APP_NAME,
    route_prefix: str = "/",
    access_log: bool = False,
) -> str:
    """Starts Serve on the current Ray (if it is not running) and deploys the policy.

    Returns once every replica is up and healthy.

    Args:
        config: What to serve and how.
        host: Address the HTTP proxy binds (``127.0.0.1``: this machine only).
        port: HTTP port.
        name: Serve application name (several policies can share one Serve).
        route_prefix: URL prefix of the application.
        access_log: Log every request (Serve's access log) besides warnings.

    Returns:
        The base URL of the application (append ``/v1`` for OpenAI clients).

    Raises:
        LmrlError: The application failed to deploy (the message says why).
    """
    (url,) = deploy_apps([(config, name, route_prefix)], host, port, access_log=access_log)
    return url


def deploy_apps(
    apps: list[tuple[ServeConfig, str, str]],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    access_log: bool = False,
) -> list[str]:
    """Deploys several policies side by side (in parallel), each as its own Serve application.

    Args:
        apps: ``(config, application name, route prefix)`` per policy.
        host: Address the HTTP proxy binds (ignored if Serve already runs).
        port: HTTP port (ignored if Serve already runs).
        access_log: Log every request besides warnings.

    Returns:
        The base URL of each application, in order.
    """
    from ray import serve

    from lmrl.platform.serve.app import build_app

    timeout = max(config.request_timeout_s for config, _, _ in apps)
    serve.start(http_options={"host": host, "port": port, "request_timeout_s": timeout + 10})
    logging_config = {"log_level": "INFO" if access_log else "WARNING", "enable_access_log": access_log}
    targets = [
        serve.RunTarget(build_app(config), name=name, route_prefix=prefix, logging_config=logging_config)
        for config, name, prefix in apps
    ]
    try:
        serve.run_many(targets)
    except RuntimeError as exc:  # Serve raises RuntimeError when a deployment fails to start
        detail = " ".join(str(exc).split())[:500]
        raise LmrlError(f"the policy deployment failed to start: {detail}") from None
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    return [f"http://{shown}:{port}{prefix.rstrip('/')}" for _, _, prefix in apps]
