"""Ray Jobs for lmrl: submit any pipeline to a cluster, follow it, manage it.

``lmrl submit CONFIG.yaml`` becomes a Ray Job whose entrypoint is the same
command a user would type on the head (``lmrl train CONFIG.yaml --set ...``).
The job carries the working directory (minus ``.venv``, ``runs``, ``.git``,
caches), a runtime_env, entrypoint resources derived from the config, a
readable submission id and metadata. The client finds the cluster
(``--address``, ``RAY_API_SERVER_ADDRESS``, ``RAY_ADDRESS``, the local head of
``lmrl cluster up --local``) and the auth token (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``) by itself.

Before submitting, the config's resource request is checked against the
cluster's nodes, and while following a job a watchdog stops it when it
stays unschedulable, so an infeasible request fails with a message instead
of hanging.

Example:
    >>> jobs = JobsClient()  # doctest: +SKIP
    >>> sub = prepare_submission("train", "maze.yaml", storage="/shared/runs")  # doctest: +SKIP
    >>> job_id = jobs.submit(sub)  # doctest: +SKIP
    >>> jobs.follow(job_id).status  # doctest: +SKIP
    'SUCCEEDED'
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import logging
import os
import secrets
import shlex
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lmrl.errors import ClusterError, did_you_mean
from lmrl.platform.cluster import read_local_head
from lmrl.ray_access import TOKEN_FIX, auth_headers, unreachable_reason

__all__ = [
    "PIPELINES",
    "WORKING_DIR_EXCLUDES",
    "FollowResult",
    "JobsClient",
    "Pipeline",
    "ResourceRequest",
    "Submission",
    "prepare_submission",
    "resolve_address",
]

#: Never uploaded with the working dir: environments, run outputs, VCS data, caches.
WORKING_DIR_EXCLUDES = [
    ".venv",
    "venv",
    ".git",
    "runs",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
]
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
_ADDRESS_FIX = (
    "start a local head with `lmrl cluster up --local`, open a tunnel to a cloud cluster with "
    "`ray dashboard cluster.yaml`, or pass --address / export RAY_ADDRESS=http://HOST:8265"
)


@dataclass(frozen=True)
class Pipeline:
    """An lmrl command that can run as a job.

    Attributes:
        command: The ``lmrl`` subcommand words (``("data", "collect")``).
        target: What the positional argument is: ``"config"`` (a YAML file,
            uploaded with the working dir), ``"path"`` (a directory on the
            cluster) or ``"env"`` (an env id).
        takes_set: Whether the command accepts ``--set key=value``.
    """

    command: tuple[str, ...]
    target: str
    takes_set: bool


PIPELINES: dict[str, Pipeline] = {
    "train": Pipeline(("train",), "config", True),
    "eval": Pipeline(("eval",), "path", False),
    "pretrain": Pipeline(("pretrain",), "config", True),
    "finetune": Pipeline(("finetune",), "config", True),
    "data-collect": Pipeline(("data", "collect"), "env", False),
    "serve": Pipeline(("serve",), "path", False),
}


# --- what a job needs -------------------------------------------------------------------------


@dataclass
class ResourceRequest:
    """The resources a job will ask the cluster for.

    Attributes:
        bundles: ``(what, resources)`` per process: the driver, each env
            runner, each learner; each must fit on one node.
        totals: The sum over all bundles (``{"CPU": 3.0, "GPU": 1.0}``).
        why: For each resource, the config values it comes from.
    """

    bundles: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, float]:
        """The resources summed over all bundles."""
        total: dict[str, float] = {}
        for _, bundle in self.bundles:
            for key, value in bundle.items():
                total[key] = total.get(key, 0.0) + value
        return {k: v for k, v in total.items() if v > 0}


@dataclass
class Submission:
    """A job ready to submit: what :func:`prepare_submission` builds, what the Jobs API takes."""

    pipeline: str
    command: list[str]
    submission_id: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    entrypoint_num_cpus: float
    entrypoint_num_gpus: float
    request: ResourceRequest
    run_dir: str | None = None
    relative_output_dir: bool = False

    @property
    def entrypoint(self) -> str:
        """The shell command the job runs."""
        return shlex.join(self.command)

    def pin_output_dir(self, directory: str | Path) -> None:
        """Makes a relative ``run.output_dir`` absolute (for a cluster that is this machine).

        Args:
            directory: What the relative output dir is resolved against (the
                submitting shell's working directory).
        """
        if not self.relative_output_dir or self.run_dir is None:
            return
        run_dir = Path(directory).expanduser().resolve() / self.run_dir
        self.command += ["--set", f"run.output_dir={run_dir.parent}"]
        self.run_dir = str(run_dir)
        self.metadata["lmrl_run_dir"] = self.run_dir
        self.relative_output_dir = False


def prepare_submission(
    pipeline: str,
    target: str,
    overrides: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    working_dir: str | Path = ".",
    storage: str | None = None,
    submission_id: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    env_vars: Sequence[str] = (),
) -> Submission:
    """Builds the job for ``lmrl <pipeline> TARGET [--set ...] [EXTRA ...]``; nothing is sent yet.

    A train config is loaded and validated here, with its overrides, so a
    wrong key fails before anything reaches the cluster; pretrain and
    finetune configs are read for their ``resources`` and ``run`` sections
    (their own commands validate them). A run without ``run.name`` gets the
    submission id as its name, so the run directory is known at submission.

    Args:
        pipeline: A key of :data:`PIPELINES` (``train``, ``eval``, ...).
        target: The config file, run/export directory or env id the command takes.
        overrides: ``--set key=value`` strings (config pipelines only).
        extra_args: More arguments for the command, passed through verbatim.
        working_dir: Uploaded as the job's working directory; a config file must lie inside it.
        storage: For config pipelines (train, pretrain, finetune): the runs'
            parent directory on the cluster (sets ``run.output_dir``); a path
            every node can write.
        submission_id: The job's id (default: ``lmrl-<pipeline>-<name>-<time>-<random>``).
        num_cpus: CPUs reserved for the driver (default: 1).
        num_gpus: GPUs reserved for the driver (default for ``train``: the
            learner's GPUs when it runs in the driver, ``resources.num_learners: 0``).
        env_vars: ``KEY=VALUE`` environment variables for the job.

    Returns:
        The submission.

    Raises:
        ClusterError: An unknown pipeline, a config outside the working dir, a bad ``--env``.
        ConfigError: The train config is invalid.
    """
    if pipeline not in PIPELINES:
        raise ClusterError(
            f"unknown pipeline {pipeline!r}; choose one of {', '.join(PIPELINES)}."
            + did_you_mean(pipeline, PIPELINES)
        )
    spec = PIPELINES[pipeline]
    if overrides and not spec.takes_set:
        raise ClusterError(
            f"--set does not apply to `lmrl {' '.join(spec.command)}`; pass its options after `--`"
        )
    wd = Path(working_dir).expanduser().resolve()
    if not wd.is_dir():
        raise ClusterError(f"--working-dir {working_dir} is not a directory")
    name = Path(target).stem if spec.target == "config" else target.rstrip("/").split("/")[-1]
    submission_id = submission_id or _new_submission_id(pipeline, name)
    shown_target = target
    if spec.target == "config":
        shown_target = _config_in_working_dir(target, wd)
    overrides = list(overrides)
    request = ResourceRequest()
    cpus = 1.0 if num_cpus is None else float(num_cpus)
    gpus = 0.0 if num_gpus is None else float(num_gpus)
    run_dir = None
    relative = False
    if pipeline == "train":
        from lmrl.platform.config import load_config

        cfg = load_config(wd / shown_target, overrides)
        from lmrl.envs import catalog

        catalog.env_info(cfg.env.id)  # an unknown env id fails here, with a did-you-mean
        output_dir, name = storage or cfg.run.output_dir, cfg.run.name
        r = cfg.resources
        if num_gpus is None and r.num_learners == 0:
            gpus = float(r.num_gpus_per_learner)
        request = _rl_request(cfg, cpus, gpus)
    elif spec.target == "config":  # pretrain / finetune: their own schema, checked by the job
        data = _read_config_dict(wd / shown_target, overrides)
        run = data.get("run") if isinstance(data.get("run"), dict) else {}
        output_dir, name = storage or str(run.get("output_dir") or "runs"), run.get("name")
        request = _train_workers_request(data, cpus, gpus)
    else:
        request.bundles.append(("the driver", _bundle(cpus, gpus)))
        request.why = {"CPU": f"the driver ({cpus:g})", "GPU": f"the driver ({gpus:g})"}
    if spec.target == "config":
        if storage is not None:
            overrides.append(f"run.output_dir={storage}")
        if name is None:  # name the run after the job, so its directory is known now
            name = submission_id
            overrides.append(f"run.name={name}")
        relative = not Path(str(output_dir)).expanduser().is_absolute()
        run_dir = str(Path(str(output_dir)) / str(name))
    words = ["lmrl", *spec.command, shown_target]
    for text in overrides:
        words += ["--set", text]
    words += list(extra_args)
    env = {"PYTHONUNBUFFERED": "1"}
    for text in env_vars:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ClusterError(
                f"--env expects KEY=VALUE, got {text!r}; e.g. --env HF_HUB_OFFLINE=1"
            )
        env[key] = value
    from lmrl import __version__

    metadata = {
        "lmrl_pipeline": pipeline,
        "lmrl_target": shown_target,
        "lmrl_version": __version__,
        "submitted_by": getpass.getuser(),
        "submitted_from": socket.gethostname(),
    }
    if run_dir is not None:
        metadata["lmrl_run_dir"] = run_dir
    return Submission(
        pipeline=pipeline,
        command=words,
        submission_id=submission_id,
        runtime_env={
            "working_dir": str(wd),
            "excludes": list(WORKING_DIR_EXCLUDES),
            "env_vars": env,
        },
        metadata=metadata,
        entrypoint_num_cpus=cpus,
        entrypoint_num_gpus=gpus,
        request=request,
        run_dir=run_dir,
        relative_output_dir=relative,
    )


def _read_config_dict(path: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """A YAML config with ``--set`` overrides applied, not validated (the pipeline does that)."""
    import yaml

    from lmrl.platform.config import apply_overrides

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ClusterError(f"{path.name}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ClusterError(f"{path.name}: the top level must be a mapping of sections")
    return apply_overrides(data, overrides)


def _train_workers_request(data: dict[str, Any], cpus: float, gpus: float) -> ResourceRequest:
    """Ray Train's workers (``resources.num_workers``, ``use_gpu``, ``cpus_per_worker``) and the driver."""
    res = data.get("resources") if isinstance(data.get("resources"), dict) else {}
    workers = int(res.get("num_workers") or 2)
    use_gpu = bool(res.get("use_gpu"))
    worker_cpus = float(res.get("cpus_per_worker") or 1.0)
    request = ResourceRequest()
    request.bundles.append(("the driver", _bundle(cpus, gpus)))
    for i in range(workers):
        request.bundles.append(
            (f"Train worker {i + 1}", _bundle(worker_cpus, 1.0 if use_gpu else 0.0))
        )
    request.why = {
        "CPU": f"the driver ({cpus:g}) + resources.num_workers ({workers}) x cpus_per_worker ({worker_cpus:g})",
        "GPU": f"resources.num_workers ({workers}) x 1 (resources.use_gpu true)"
        + (f" + the driver ({gpus:g})" if gpus else ""),
    }
    return request


def _rl_request(cfg: Any, cpus: float, gpus: float) -> ResourceRequest:
    """What RLlib will ask for: the driver, env runners, and learners (RLlib's CPU default)."""
    r = cfg.resources
    request = ResourceRequest()
    request.bundles.append(("the driver", _bundle(cpus, gpus)))
    for i in range(r.num_env_runners):
        request.bundles.append((f"env runner {i + 1}", _bundle(r.num_cpus_per_env_runner, 0.0)))
    learner_cpus = 0.0 if r.num_gpus_per_learner > 0 else 1.0  # RLlib's num_cpus_per_learner="auto"
    for i in range(r.num_learners):
        request.bundles.append(
            (f"learner {i + 1}", _bundle(learner_cpus, float(r.num_gpus_per_learner)))
        )
    cpu_parts = [f"the driver ({cpus:g})"]
    if r.num_env_runners:
        cpu_parts.append(
            f"resources.num_env_runners ({r.num_env_runners}) x num_cpus_per_env_runner "
            f"({r.num_cpus_per_env_runner:g})"
        )
    if r.num_learners and learner_cpus:
        cpu_parts.append(f"resources.num_learners ({r.num_learners}) x 1")
    if r.num_learners:
        gpu_why = (
            f"resources.num_learners ({r.num_learners}) x num_gpus_per_learner "
            f"({r.num_gpus_per_learner:g})"
        )
    else:
        gpu_why = f"resources.num_gpus_per_learner ({r.num_gpus_per_learner:g}) in the driver (num_learners 0)"
    if gpus and r.num_learners:
        gpu_why += f" + the driver ({gpus:g})"
    request.why = {"CPU": " + ".join(cpu_parts), "GPU": gpu_why}
    return request


def _bundle(cpus: float, gpus: float) -> dict[str, float]:
    bundle = {"CPU": float(cpus)}
    if gpus:
        bundle["GPU"] = float(gpus)
    return bundle


def _config_in_working_dir(target: str, wd: Path) -> str:
    path = Path(target).expanduser()
    full = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not full.is_file():
        raise ClusterError(
            f"config file not found: {target}; pass the path of a YAML config inside the "
            "working directory"
        )
    try:
        relative = full.relative_to(wd)
    except ValueError:
        raise ClusterError(
            f"{target} is outside the working directory {wd}, so the job would not have it; "
            "move it there or pass --working-dir with a directory that holds it"
        ) from None
    if relative.parts and relative.parts[0] in WORKING_DIR_EXCLUDES:
        raise ClusterError(
            f"{target} lies in {relative.parts[0]}/, which is not uploaded with the working dir; "
            "copy the config elsewhere in the working directory"
        )
    return relative.as_posix()


def _new_submission_id(pipeline: str, name: str) -> str:
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40].strip("-") or "job"
    return f"lmrl-{pipeline}-{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


# --- talking to the cluster ---------------------------------------------------------------


def resolve_address(address: str | None = None) -> tuple[str, str]:
    """Finds the Jobs API URL: ``--address``, env vars, the local head, then the default.

    Args:
        address: An explicit address (``http://host:8265`` or ``host:8265``).

    Returns:
        ``(url, source)``, where source names where the address came from.
    """
    if address:
        return _as_url(address), "--address"
    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = os.environ.get(var, "").strip()
        if value and value not in ("auto", "local"):
            return _as_url(value), var
    head = read_local_head()
    if head is not None:
        return head.dashboard_url, "the local head of `lmrl cluster up --local`"
    return DEFAULT_ADDRESS, "the default"


def _as_url(address: str) -> str:
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


@dataclass
class FollowResult:
    """How a followed job ended."""

    submission_id: str
    status: str
    message: str
    seconds: float


class JobsClient:
    """A Ray Jobs API client that finds the cluster and the token itself and explains failures.

    Args:
        address: The Jobs API (default: see :func:`resolve_address`).
        connect_timeout_s: How long to wait for the address to accept a connection.

    Raises:
        ClusterError: Nothing answers at the address, or the cluster refuses
            the token (missing: 401, wrong: 403).
    """

    def __init__(self, address: str | None = None, connect_timeout_s: float = 5.0) -> None:
        self.address, self.address_source = resolve_address(address)
        self.headers, self.token_source = auth_headers()
        self.sends_token = bool(self.headers)
        self._check_reachable(connect_timeout_s)
        from ray.job_submission import JobSubmissionClient
        from ray.util.state import StateApiClient

        for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
            logging.getLogger(name).setLevel(
                logging.WARNING
            )  # "package exists", "WebSocket closed"

        try:
            # Each client keeps (and extends) the headers it is given: one dict each.
            self.client = JobSubmissionClient(self.address, headers=dict(self.headers))
            self.state = StateApiClient(self.address, headers=dict(self.headers))
        except Exception as exc:
            raise self._explain(exc) from None

    # --- errors -----------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.address} (from {self.address_source})"

    def _check_reachable(self, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(self.address)
        port = parts.port or (443 if parts.scheme == "https" else 8265)
        reason = unreachable_reason(parts.hostname or "127.0.0.1", port, timeout_s)
        if reason is not None:
            raise ClusterError(
                f"no Ray cluster answers at {self._where()}: {reason}; {_ADDRESS_FIX}"
            )

    def _explain(self, exc: Exception) -> ClusterError:
        text = " ".join(str(exc).split())
        if "Authentication required" in text or "status code 401" in text:
            return ClusterError(
                f"the Ray cluster at {self._where()} refused the request: 401 Unauthorized, no auth "
                f"token was sent (looked in {self.token_source}); {TOKEN_FIX}"
            )
        if "Authentication failed" in text or "status code 403" in text:
            return ClusterError(
                f"the Ray cluster at {self._where()} refused the token from {self.token_source}: "
                f"403 Forbidden, the token is wrong; {TOKEN_FIX}"
            )
        if isinstance(exc, ConnectionError) or "Failed to connect" in text:
            return ClusterError(
                f"no Ray Jobs API answers at {self._where()}: {text[:200]}; {_ADDRESS_FIX}"
            )
        if "does not exist" in text:
            return ClusterError(f"{text[:300]}; `lmrl jobs list` shows the submission ids")
        return ClusterError(f"the Ray Jobs API at {self._where()} failed: {text[:400]}")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except ClusterError:
            raise
        except Exception as exc:
            raise self._explain(exc) from None

    def _list_state(self, resource: str, **options: Any) -> list[Any]:
        """Rows of the cluster's state API (``ray.util.state``): ``"nodes"``, ``"actors"``, ..."""
        from ray.util.state.common import ListApiOptions, StateResource

        try:
            return self.state.list(
                StateResource(resource),
                options=ListApiOptions(limit=10000, **options),
                raise_on_missing_output=False,
            )
        except Exception as exc:
            raise self._explain(exc) from None

    # --- the cluster ----------------------------------------------------------------------

    def nodes(self) -> list[dict[str, Any]]:
        """The alive nodes: ``node_id``, ``node_ip``, ``is_head_node``, ``resources_total``."""
        rows = self._list_state("nodes", filters=[("state", "=", "ALIVE")])
        return [dataclasses.asdict(row) for row in rows]

    def usage(self) -> dict[str, tuple[float, float]]:
        """Resource usage over the cluster: ``{"CPU": (used, total), ...}``.

        The dashboard's ``/api/cluster_status`` is the only place with the
        used amounts (``ray.util.state`` has the totals alone); it is read with
        a plain HTTP GET carrying the token.
        """
        url = self.client.get_address() + "/api/cluster_status"
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                data = json.load(response)
        except urllib.error.HTTPError as exc:
            raise self._explain(RuntimeError(f"status code {exc.code} from {url}")) from None
        except (OSError, ValueError) as exc:
            raise self._explain(ConnectionError(f"Failed to connect: {exc}")) from None
        report = (data.get("data", {}).get("clusterStatus") or {}).get("loadMetricsReport") or {}
        return {key: (float(v[0]), float(v[1])) for key, v in (report.get("usage") or {}).items()}

    def check_resources(self, request: ResourceRequest) -> None:
        """Fails when the cluster's nodes cannot hold the request (as they are now).

        Raises:
            ClusterError: The request needs more of a resource than the cluster
                has, or a single process needs more than any one node has.
        """
        nodes = self.nodes()
        capacity: dict[str, float] = {}
        for node in nodes:
            for key, value in (node.get("resources_total") or {}).items():
                capacity[key] = capacity.get(key, 0.0) + float(value)
        have = _describe(capacity, len(nodes))
        for key, needed in request.totals.items():
            if needed > capacity.get(key, 0.0) + 1e-9:
                why = request.why.get(key, key)
                raise ClusterError(
                    f"the config asks for {needed:g} {key} ({why}) but the cluster at "
                    f"{self.address} has {capacity.get(key, 0.0):g} ({have}); lower the request in "
                    f"the config's resources: section, add nodes with {key}, or, on an autoscaling "
                    "cluster whose nodes start on demand, pass --no-resource-check"
                )
        for what, bundle in request.bundles:
            if not any(_fits(bundle, node.get("resources_total") or {}) for node in nodes):
                raise ClusterError(
                    f"{what} needs {_format(bundle)} on one node, and no node of the cluster at "
                    f"{self.address} has that ({have}); lower it in the config or add a bigger node"
                )

    def is_this_machine(self) -> bool:
        """True when every node of the cluster runs on this machine (so paths here are paths there)."""
        from ray.util import get_node_ip_address

        ips = {str(node.get("node_ip")) for node in self.nodes()}
        return bool(ips) and ips <= {"127.0.0.1", get_node_ip_address()}

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, submission: Submission) -> str:
        """Submits a job; returns its submission id."""
        return str(
            self._call(
                "submit_job",
                entrypoint=submission.entrypoint,
                submission_id=submission.submission_id,
                runtime_env=submission.runtime_env,
                metadata=submission.metadata,
                entrypoint_num_cpus=submission.entrypoint_num_cpus,
                entrypoint_num_gpus=submission.entrypoint_num_gpus,
            )
        )

    def list_jobs(self) -> list[Any]:
        """Every job the cluster knows, newest first."""
        jobs = list(self._call("list_jobs"))
        jobs.sort(key=lambda j: j.start_time or 0, reverse=True)
        return jobs

    def info(self, submission_id: str) -> Any:
        """The job's details (status, message, entrypoint, times, metadata)."""
        self._known(submission_id)
        return self._call("get_job_info", submission_id)

    def status(self, submission_id: str) -> str:
        """The job's status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
        return str(self._call("get_job_status", submission_id))

    def logs(self, submission_id: str) -> str:
        """All of the job's output so far."""
        self._known(submission_id)
        return str(self._call("get_job_logs", submission_id))

    def stop(self, submission_id: str) -> bool:
        """Asks the cluster to stop the job; True if it was running."""
        self._known(submission_id)
        return bool(self._call("stop_job", submission_id))

    def log_tail(self, submission_id: str, lines: int = 40) -> str:
        """The last ``lines`` lines of the job's output."""
        text = str(self._call("get_job_logs", submission_id)).rstrip("\n")
        return "\n".join(text.splitlines()[-lines:])

    def _known(self, submission_id: str) -> None:
        """A clear error, with a did-you-mean, for a submission id the cluster does not know."""
        try:
            self.client.get_job_status(submission_id)
            return
        except Exception as exc:
            if "does not exist" not in str(exc) and "404" not in str(exc):
                raise self._explain(exc) from None
        ids = [j.submission_id for j in self._call("list_jobs") if j.submission_id]
        raise ClusterError(
            f"no job `{submission_id}` on the cluster at {self.address}."
            + (did_you_mean(submission_id, ids) or "")
            + " `lmrl jobs list` shows the submission ids"
        )

    def follow(
        self,
        submission_id: str,
        stream: bool = True,
        out: TextIO | None = None,
        pending_timeout_s: float = 600.0,
        poll_s: float = 2.0,
        driver: dict[str, float] | None = None,
    ) -> FollowResult:
        """Waits for a job to end, streaming its output, and stops it if it cannot be scheduled.

        The watchdog stops the job when it stays PENDING (its driver cannot be
        placed), or when one of its actors asks for resources that no node has,
        for longer than ``pending_timeout_s``.

        Args:
            submission_id: The job.
            stream: Print the job's output as it comes.
            out: Where to print (default: stdout).
            pending_timeout_s: Seconds a job may stay unschedulable.
            poll_s: Seconds between status checks.
            driver: The driver's resources (``{"CPU": 1.0}``), to tell a job
                that can never start from one that sets up or queues.

        Returns:
            The final status, Ray's message for it, and the seconds waited.

        Raises:
            ClusterError: The job was stopped by the watchdog.
        """
        out = out or sys.stdout
        return asyncio.run(
            self._follow(submission_id, stream, out, pending_timeout_s, poll_s, driver or {})
        )

    async def _follow(
        self,
        submission_id: str,
        stream: bool,
        out: TextIO,
        pending_timeout_s: float,
        poll_s: float,
        driver: dict[str, float],
    ) -> FollowResult:
        start = time.monotonic()

        async def pump() -> None:
            async for chunk in self.client.tail_job_logs(submission_id):
                out.write(chunk)
                out.flush()

        pump_task = asyncio.create_task(pump()) if stream else None
        stuck_since: float | None = None
        try:
            while True:
                info = await asyncio.to_thread(self._call, "get_job_info", submission_id)
                status = str(info.status)
                if status in TERMINAL:
                    break
                problem = await asyncio.to_thread(self._unschedulable, info, driver)
                if problem is None:
                    stuck_since = None
                else:
                    stuck_since = stuck_since or time.monotonic()
                    waited = time.monotonic() - stuck_since
                    if waited > pending_timeout_s:
                        await asyncio.to_thread(self._call, "stop_job", submission_id)
                        if status == "PENDING":  # Ray cannot stop a job before its driver starts
                            outcome = (
                                "gave up on it; Ray fails it by itself after "
                                "RAY_JOB_START_TIMEOUT_SECONDS (900 s by default)"
                            )
                        else:
                            outcome = "stopped it"
                        raise ClusterError(
                            f"job {submission_id} {problem} for {waited:.0f} s, so lmrl {outcome}; "
                            "lower the config's resources, add nodes, or raise --pending-timeout "
                            "if an autoscaler is still starting them"
                        )
                if pump_task is not None and pump_task.done() and pump_task.exception():
                    pump_task = None  # the log stream broke; keep polling the status
                await asyncio.sleep(poll_s)
            if pump_task is not None:
                try:  # the stream ends shortly after the job does
                    await asyncio.wait_for(pump_task, timeout=10)
                except (asyncio.TimeoutError, Exception):
                    pass
        finally:
            if pump_task is not None and not pump_task.done():
                pump_task.cancel()
        return FollowResult(
            submission_id, status, str(info.message or ""), time.monotonic() - start
        )

    def _unschedulable(self, info: Any, driver: dict[str, float]) -> str | None:
        """Why the job cannot progress (a sentence), or None while it can."""
        if str(info.status) == "PENDING":
            need = driver
            if not need:
                return None
            try:
                nodes = self.nodes()
            except ClusterError:
                return None
            if any(_fits(need, n.get("resources_total") or {}) for n in nodes):
                return None  # setting up its runtime env, or queued behind other jobs
            return (
                f"is still PENDING: its driver needs {_format(need)} on one node, which no node "
                f"of the cluster has ({_describe(_capacity(nodes), len(nodes))})"
            )
        job_id = getattr(info, "job_id", None)
        if not job_id:
            return None
        try:
            actors = self._list_state(
                "actors",
                filters=[("job_id", "=", job_id), ("state", "=", "PENDING_CREATION")],
                detail=True,
            )
            nodes = self.nodes()
        except ClusterError:
            return None
        for actor in actors:
            need = {k: float(v) for k, v in (actor.required_resources or {}).items()}
            if need and not any(_fits(need, n.get("resources_total") or {}) for n in nodes):
                name = str(actor.class_name or "")
                name = "an actor" if not name or "<locals>" in name else name
                return (
                    f"waits for {name}, which needs {_format(need)} that no node of the "
                    f"cluster has ({_describe(_capacity(nodes), len(nodes))})"
                )
        return None


def _capacity(nodes: list[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for node in nodes:
        for key, value in (node.get("resources_total") or {}).items():
            total[key] = total.get(key, 0.0) + float(value)
    return total


def _fits(bundle: dict[str, float], node: dict[str, Any]) -> bool:
    return all(float(node.get(k, 0.0)) + 1e-9 >= v for k, v in bundle.items() if v > 0)


def _format(resources: dict[str, Any]) -> str:
    shown = {k: float(v) for k, v in resources.items() if v and not k.startswith("node:")}
    # CPU, then GPU, then the rest by name: Ray's own dicts come in either order.
    order = sorted(shown, key=lambda k: ({"CPU": 0, "GPU": 1}.get(k, 2), k))
    return ", ".join(f"{shown[k]:g} {k}" for k in order) or "nothing"


def _describe(capacity: dict[str, float], n_nodes: int) -> str:
    cpu = capacity.get("CPU", 0.0)
    gpu = capacity.get("GPU", 0.0)
    return f"{n_nodes} node{'s' if n_nodes != 1 else ''}: {cpu:g} CPU, {gpu:g} GPU"
