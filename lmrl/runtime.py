"""Starting or joining Ray: the one place that does it, for every run and for ``lmrl serve``.

It lives below the pipelines, which call it at the start of each run (a no-op
when the CLI has already started Ray). ``init_ray()`` starts a quiet local Ray
(no dashboard; Ray's and RLlib's logs only at ERROR, and worker output still
streamed, so failures stay visible); ``init_ray("auto")`` or
``init_ray("host:6379")`` joins a running cluster started with
``ray start --head``. Ray 2.60 clusters enforce token auth: when the caller
has not chosen an auth mode and a token is available (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``), joining switches this
process to token mode (``RAY_AUTH_MODE=token``, kept for the rest of the
process, as Ray does for a local cluster) so the connection is accepted.

Example:
    >>> from lmrl.runtime import init_ray, shutdown_ray
    >>> init_ray(num_cpus=2)  # doctest: +SKIP
    >>> shutdown_ray()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence

from lmrl.errors import LmrlError
from lmrl.ray_access import ray_auth_env, unreachable_reason

__all__ = ["init_ray", "shutdown_ray"]

_CONNECT_FIX = (
    "start a cluster with `ray start --head` and pass the address it prints (or 'auto' on the "
    "head node); if the cluster uses token auth, export RAY_AUTH_TOKEN (or RAY_AUTH_MODE=token "
    "with the token in ~/.ray/auth_token)"
)


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    log_to_driver: bool = True,
    preload: Sequence[str] = (),
    metrics_port: int | None = None,
) -> None:
    """Starts a local Ray or connects to a cluster; does nothing if Ray is already up.

    Args:
        address: ``None`` starts a local Ray in this process, or joins the
            cluster named by ``RAY_ADDRESS`` when that is set (as it is for
            the driver of a Ray Job). ``"auto"``,
            ``"host:port"`` (the GCS address ``ray start --head`` prints) or
            ``"ray://host:10001"`` (Ray Client) joins a running cluster.
        num_cpus: CPUs for a local Ray (default: all). Ignored when joining a
            cluster, whose size is set by ``ray start``.
        log_to_driver: Stream worker output here. ``lmrl pretrain/finetune``
            turn it off: Ray Train and Ray Data actors log every epoch, and a
            worker's failure reaches the driver as an error anyway.
        preload: Modules to import in a background thread while Ray starts (e.g.
            :data:`lmrl.pipelines.rl.loop.RL_MODULES`); the call returns once both are done. Starting
            a local Ray is mostly waiting for its processes, so the imports
            come almost free (``BENCHMARKS.md``, "Start-up").
        metrics_port: Port of a local Ray's Prometheus endpoint (default: chosen
            by Ray; ``lmrl serve --metrics-port``). A cluster's port is set by
            ``ray start --metrics-export-port``.

    Raises:
        LmrlError: The cluster cannot be reached or refuses the connection;
            the message says how to start one and how to authenticate.
    """
    import ray

    if ray.is_initialized():
        return
    # Ray and RLlib log many warnings per run (deprecations, new API stack, token auth);
    # only errors reach the terminal. Worker output still streams to the driver, so a
    # crashing actor's traceback stays visible.
    quiet = {
        "logging_level": logging.ERROR,
        "log_to_driver": log_to_driver,
        "logging_config": ray.LoggingConfig(encoding="TEXT", log_level="ERROR"),
    }
    if address is None and os.environ.get("RAY_ADDRESS"):
        # A Ray Job's driver (`ray job submit -- lmrl train ...`): RAY_ADDRESS names the cluster.
        address = os.environ["RAY_ADDRESS"]
    loader = _preload(preload)
    try:
        if address is None:
            # No idle workers forked up front: a run whose env runners and learner live in the
            # driver needs none, and on 2 cores their start competes with the driver's.
            # Actors still get workers when they are created.
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                ignore_reinit_error=True,
                _system_config={"prestart_worker_first_driver": False},
                _metrics_export_port=metrics_port,
                **quiet,
            )
        else:
            _join(address, quiet)
    finally:
        if loader is not None:
            loader.join()


def _preload(modules: Sequence[str]) -> threading.Thread | None:
    """Imports ``modules`` in a daemon thread; an import error surfaces later, at the real import."""
    if not modules:
        return None

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the caller's own import reports it properly
                return

    thread = threading.Thread(target=load, name="lmrl-preload", daemon=True)
    thread.start()
    return thread


def _join(address: str, quiet: dict) -> None:
    """Connects to a running cluster (in token mode when a token is available)."""
    import ray

    _check_reachable(address)
    _use_token_auth()
    try:
        ray.init(address=address, ignore_reinit_error=True, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise LmrlError(f"cannot connect to Ray at {address!r}: {detail}; {_CONNECT_FIX}") from None


def _use_token_auth() -> None:
    """Puts this process in Ray's token mode when a token exists and no mode was chosen.

    Ray 2.60 keeps its auth mode in its C++ config (``RayConfig``), which reads
    ``RAY_AUTH_MODE`` from the environment when ``ray`` is imported and again
    each time it is re-initialised, as the core worker does while ``ray.init``
    connects. So the variable is set for the rest of the process (and its
    children), and the config re-reads it now: what Ray itself does when
    ``ray.init()`` starts a local cluster, or joins with ``address="auto"``
    (``ray._private.authentication.authentication_token_setup._enable_token_auth``).
    For an explicit address Ray never does it, so a join by address without
    this is refused (``InvalidAuthToken``). A mode the user set is kept.
    """
    auth = ray_auth_env()
    if not auth:
        return
    os.environ.update(auth)
    from ray._raylet import Config  # private, but the call Ray makes for the same purpose

    Config.initialize("")


def shutdown_ray() -> None:
    """Stops (or disconnects from) Ray if this process started it; safe to call any time."""
    ray = sys.modules.get("ray")  # never import Ray just to shut it down
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fails fast on a host:port nobody listens on (Ray itself retries for a minute or more)."""
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not port_text.isdigit():
        raise LmrlError(
            f"Ray address {address!r} is not of the form host:port, ray://host:port or 'auto'; "
            f"{_CONNECT_FIX}"
        )
    reason = unreachable_reason(host, int(port_text), timeout_s)
    if reason is not None:
        raise LmrlError(
            f"cannot connect to Ray at {address!r}: nothing answers at {hostport} ({reason}); "
            f"{_CONNECT_FIX}"
        )
