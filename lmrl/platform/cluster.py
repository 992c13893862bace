"""Ray clusters for lmrl: checking ``cluster.yaml``, and a token-protected head on loopback.

Two jobs, one module:

- :func:`validate_cluster_file` checks a Ray cluster-launcher config with Ray's
  own autoscaler validator (its ``ray-schema.json`` and
  ``ray.autoscaler._private.util.validate_config``) and then lmrl's rules:
  token auth on every node with the token file mounted, nothing bound to
  ``0.0.0.0``, and at least one GPU worker type.
- :func:`start_local_head`, :func:`stop_local_head` and :func:`read_local_head`
  run a one-node cluster on this machine for users without a cloud: a real
  ``ray start --head`` with ``RAY_AUTH_MODE=token``, the dashboard and Jobs
  API on 127.0.0.1, and its own temp dir, so stopping it never touches other
  Ray instances on the machine.

Example:
    >>> report = validate_cluster_file("cluster.yaml")  # doctest: +SKIP
    >>> report.ok, [t.name for t in report.node_types]  # doctest: +SKIP
    (True, ['head', 'cpu_16', 'gpu_a10g', 'gpu_a10g_x4'])
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from lmrl.errors import ClusterError, did_you_mean
from lmrl.ray_access import discover_token

__all__ = [
    "ClusterReport",
    "LocalHead",
    "NodeType",
    "lmrl_home",
    "read_local_head",
    "start_local_head",
    "stop_local_head",
    "validate_cluster_config",
    "validate_cluster_file",
]

DEFAULT_CLUSTER_FILE = "cluster.yaml"
_SCHEMA = "Ray's cluster schema"
# Places in a cluster config that hold shell commands (top level; node types may override two).
_COMMAND_KEYS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)


# --- per-user state -------------------------------------------------------------------------


def lmrl_home() -> Path:
    """Where lmrl keeps per-user state (``$LMRL_HOME``, default ``~/.lmrl``)."""
    return Path(os.environ.get("LMRL_HOME") or Path.home() / ".lmrl").expanduser()


# --- validating cluster.yaml ----------------------------------------------------------------


@dataclass
class NodeType:
    """One node type of a cluster config, as the validator read it."""

    name: str
    instance_type: str
    min_workers: int
    max_workers: int
    resources: dict[str, Any]
    is_head: bool = False


@dataclass
class ClusterReport:
    """What :func:`validate_cluster_file` found.

    Attributes:
        source: The file (or label) checked.
        problems: One line each; empty when the config passes.
        notes: Advice that does not fail validation (e.g. the token file is not created yet).
        node_types: The node types, head first.
    """

    source: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    node_types: list[NodeType] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems


def validate_cluster_file(path: str | Path = DEFAULT_CLUSTER_FILE) -> ClusterReport:
    """Checks a Ray cluster-launcher YAML file with Ray's validator and lmrl's rules.

    Args:
        path: The cluster config (default ``cluster.yaml``).

    Returns:
        The report; ``report.problems`` lists every problem, one line each.

    Raises:
        ClusterError: The file is missing or is not a YAML mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ClusterError(
            f"cluster config not found: {path}; pass the path of a Ray cluster-launcher YAML "
            f"(the repository ships {DEFAULT_CLUSTER_FILE})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ClusterError(f"{path}: YAML syntax error{where}: {exc.problem}") from None
    if not isinstance(data, dict):
        raise ClusterError(
            f"{path}: a cluster config is a mapping (cluster_name, provider, available_node_types, ...), "
            f"got {type(data).__name__}"
        )
    return validate_cluster_config(data, str(path))


def validate_cluster_config(data: dict[str, Any], source: str = "cluster.yaml") -> ClusterReport:
    """Checks a cluster config already loaded from YAML; see :func:`validate_cluster_file`.

    Args:
        data: The config as a dict.
        source: The name used in messages.

    Returns:
        The report.
    """
    report = ClusterReport(source)
    report.problems.extend(_schema_problems(data, source))
    if report.problems:  # Ray's defaults cannot be merged into a config of the wrong shape
        return report
    try:
        prepared = _ray_prepare_and_validate(data)
    except Exception as exc:  # Ray raises ValueError, RuntimeError, KeyError, jsonschema errors
        report.problems.append(f"{source}: {_SCHEMA}: {_one_line(exc)}")
        return report
    report.node_types = _node_types(prepared)
    report.problems.extend(_auth_problems(data, prepared, source, report.notes))
    report.problems.extend(_binding_problems(data, prepared, source))
    report.problems.extend(_gpu_problems(report.node_types, source))
    return report


def _schema_problems(data: dict[str, Any], source: str) -> list[str]:
    """Every violation of Ray's ``ray-schema.json``, located and with a did-you-mean for keys."""
    import jsonschema
    import ray.autoscaler

    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    problems = []
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key in allowed:
                    continue
                dotted = f"{where}.{key}" if where else key
                hint = did_you_mean(str(key), allowed)
                problems.append(f"{source}: unknown key `{dotted}` ({_SCHEMA}).{hint}".rstrip("."))
            continue
        at = f"`{where}`" if where else "the top level"
        problems.append(f"{source}: {at}: {_one_line(error.message)} ({_SCHEMA})")
    return problems


def _ray_prepare_and_validate(data: dict[str, Any]) -> dict[str, Any]:
    """What ``ray up`` does before launching: merge the provider defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    logger = logging.getLogger("ray.autoscaler._private.util")
    level = logger.level
    logger.setLevel(logging.WARNING)  # "setting max workers for head node type to 0"
    try:
        prepared = prepare_config(copy.deepcopy(data))
        validate_config(prepared)
    finally:
        logger.setLevel(level)
    return prepared


def _node_types(prepared: dict[str, Any]) -> list[NodeType]:
    head = prepared.get("head_node_type")
    types = []
    for name, spec in (prepared.get("available_node_types") or {}).items():
        node_config = spec.get("node_config") or {}
        types.append(
            NodeType(
                name=name,
                instance_type=str(
                    node_config.get("InstanceType")
                    or node_config.get("machineType")
                    or node_config.get("vmSize")
                    or "-"
                ),
                min_workers=int(spec.get("min_workers", 0)),
                max_workers=int(spec.get("max_workers", 0)),
                resources=dict(spec.get("resources") or {}),
                is_head=name == head,
            )
        )
    types.sort(key=lambda t: not t.is_head)
    return types


def _commands(config: dict[str, Any], key: str) -> list[str]:
    return [str(c) for c in (config.get(key) or [])]


def _auth_problems(
    raw: dict[str, Any], prepared: dict[str, Any], source: str, notes: list[str]
) -> list[str]:
    problems = []
    every_node = " ".join(
        _commands(prepared, "setup_commands") + _commands(prepared, "initialization_commands")
    )
    for role, setup_key, start_key in (
        ("head", "head_setup_commands", "head_start_ray_commands"),
        ("worker", "worker_setup_commands", "worker_start_ray_commands"),
    ):
        text = " ".join(
            [every_node, *_commands(prepared, setup_key), *_commands(prepared, start_key)]
        )
        if re.search(r"RAY_AUTH_MODE=[\"']?disabled", text):
            problems.append(
                f"{source}: token auth is switched off on the {role} nodes (RAY_AUTH_MODE=disabled); "
                f"start Ray with `RAY_AUTH_MODE=token ray start ...` in {start_key}"
            )
        elif not re.search(r"RAY_AUTH_MODE=[\"']?token", text):
            default = "" if start_key in raw else f" (Ray's default, since {source} sets none)"
            problems.append(
                f"{source}: token auth is off on the {role} nodes: {start_key}{default} never sets "
                f"RAY_AUTH_MODE=token; start Ray with `RAY_AUTH_MODE=token ray start ...`"
            )
    all_commands = " ".join(c for key in _COMMAND_KEYS for c in _commands(prepared, key))
    if re.search(r"RAY_AUTH_TOKEN=\S", all_commands):
        problems.append(
            f"{source}: a commands list sets RAY_AUTH_TOKEN=...: the token would sit in the config "
            "and in shell histories; mount the token file instead "
            "(file_mounts: {~/.ray/auth_token: ~/.ray/auth_token})"
        )
    remote_token = "~/.ray/auth_token"
    custom = re.search(r"RAY_AUTH_TOKEN_PATH=[\"']?([^\s\"';]+)", all_commands)
    if custom:
        remote_token = custom.group(1)
    mounts = {str(k): str(v) for k, v in (prepared.get("file_mounts") or {}).items()}
    wanted = {remote_token, remote_token.replace("~", "/home/" + str(_ssh_user(prepared)), 1)}
    mounted = next(
        (local for remote, local in mounts.items() if remote.rstrip("/") in wanted), None
    )
    if mounted is None:
        problems.append(
            f"{source}: the token file is not mounted: file_mounts has no `{remote_token}`; add "
            f"`{remote_token}: ~/.ray/auth_token` (create it with `ray get-auth-token --generate`)"
        )
    elif not Path(mounted).expanduser().is_file():
        notes.append(
            f"the token file {mounted} (mounted at {remote_token}) does not exist on this machine "
            "yet; create it with `ray get-auth-token --generate` before `ray up`"
        )
    return problems


def _ssh_user(prepared: dict[str, Any]) -> str:
    return str((prepared.get("auth") or {}).get("ssh_user") or "ubuntu")


def _binding_problems(raw: dict[str, Any], prepared: dict[str, Any], source: str) -> list[str]:
    problems = []
    lists: list[tuple[str, list[str]]] = [(key, _commands(prepared, key)) for key in _COMMAND_KEYS]
    docker = prepared.get("docker") or {}
    for key in ("run_options", "head_run_options", "worker_run_options"):
        lists.append((f"docker.{key}", [str(o) for o in docker.get(key) or []]))
    for key, commands in lists:
        default = "" if key.split(".")[0] in raw else f" (Ray's default, since {source} sets none)"
        for command in commands:
            public = re.search(r"0\.0\.0\.0|--dashboard-host[= ]+[\"']?(::|\[::\])", command)
            host = re.search(r"--dashboard-host[= ]+[\"']?([^\s\"']+)", command)
            if public:
                problems.append(
                    f"{source}: {key}{default} binds to {public.group(0).split()[-1].split('=')[-1]}, "
                    f"which is public: `{_short(command)}`; bind to 127.0.0.1 "
                    "(--dashboard-host=127.0.0.1) and reach the dashboard with "
                    f"`ray dashboard {source}`"
                )
            elif host and host.group(1) not in ("127.0.0.1", "localhost"):
                problems.append(
                    f"{source}: {key} binds the dashboard to {host.group(1)}: `{_short(command)}`; "
                    f"use --dashboard-host=127.0.0.1 and reach it with `ray dashboard {source}`"
                )
    return problems


def _gpu_problems(node_types: list[NodeType], source: str) -> list[str]:
    workers = [t for t in node_types if not t.is_head]
    gpu = [t for t in workers if float(t.resources.get("GPU", 0) or 0) > 0]
    usable = [t for t in gpu if t.max_workers > 0]
    if usable:
        return []
    if gpu:
        names = ", ".join(t.name for t in gpu)
        return [
            f"{source}: the GPU worker types ({names}) have max_workers 0, so no GPU node can "
            "start; raise max_workers"
        ]
    return [
        f"{source}: no GPU worker type: no node type in available_node_types other than the head "
        "declares resources: {GPU: N}; add one, e.g. `gpu_a10g: {min_workers: 0, max_workers: 4, "
        "resources: {CPU: 16, GPU: 1}, node_config: {InstanceType: g5.4xlarge}}`"
    ]


def _short(text: str, limit: int = 90) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


# --- a local head on loopback ---------------------------------------------------------------


@dataclass
class LocalHead:
    """A head started by :func:`start_local_head`, as recorded in ``$LMRL_HOME/local_cluster.json``.

    Attributes:
        gcs_address: ``ip:port`` of the GCS (what ``ray.init(address=...)`` takes).
        dashboard_url: The dashboard and Jobs API (``RAY_ADDRESS`` for ``lmrl submit``).
        temp_dir: The head's own Ray temp dir (sessions, logs).
        ports: Every port the head was given.
        num_cpus: CPUs offered to Ray (``None``: all).
        num_gpus: GPUs offered to Ray (``None``: detected).
        token_source: Where the auth token came from.
        started_at: Unix time of the start.
    """

    gcs_address: str
    dashboard_url: str
    temp_dir: str
    ports: dict[str, int]
    num_cpus: int | None = None
    num_gpus: int | None = None
    token_source: str = ""
    started_at: float = 0.0


def _state_file() -> Path:
    return lmrl_home() / "local_cluster.json"


def read_local_head() -> LocalHead | None:
    """The local head recorded by :func:`start_local_head`, or ``None`` when there is none."""
    path = _state_file()
    if not path.is_file():
        return None
    try:
        return LocalHead(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None


def start_local_head(
    port: int = 6379,
    dashboard_port: int = 8265,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    temp_dir: str | Path | None = None,
    timeout_s: float = 120.0,
) -> LocalHead:
    """Starts a one-node Ray cluster on this machine with token auth and a loopback dashboard.

    Runs ``ray start --head --node-ip-address 127.0.0.1`` with ``RAY_AUTH_MODE=token``
    (the token comes from :func:`~lmrl.ray_access.discover_token`; when there is none, a new one
    is written to ``~/.ray/auth_token``), the dashboard and Jobs API on
    127.0.0.1, free ports for Ray's other services, and a temp dir of its own.

    Args:
        port: The GCS port (0: a free port).
        dashboard_port: The dashboard / Jobs API port (0: a free port).
        num_cpus: CPUs offered to Ray (default: all).
        num_gpus: GPUs offered to Ray (default: detected).
        temp_dir: Ray's temp dir for this head (default: ``/tmp/lmrl-ray-<port>``).
        timeout_s: How long to wait for the Jobs API to answer.

    Returns:
        The head, also recorded in ``$LMRL_HOME/local_cluster.json``.

    Raises:
        ClusterError: A head is already recorded and running, a port is taken,
            or Ray fails to start (the message carries Ray's last output lines).
    """
    running = read_local_head()
    if running is not None and _answers(running.dashboard_url):
        raise ClusterError(
            f"a local head is already running (dashboard {running.dashboard_url}); "
            "stop it with `lmrl cluster down` first"
        )
    port = _pick_port(port, "--port")
    dashboard_port = _pick_port(dashboard_port, "--dashboard-port")
    extra = {
        name: _free_port()
        for name in (
            "ray-client-server-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "metrics-export-port",
            "node-manager-port",
            "object-manager-port",
        )
    }
    token, token_source = discover_token()
    env = dict(os.environ, RAY_AUTH_MODE="token")
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):  # this head is not the caller's cluster
        env.pop(var, None)
    if token is None:
        token_path = Path.home() / ".ray" / "auth_token"
        token_path.parent.mkdir(parents=True, exist_ok=True)
        token_path.write_text(secrets.token_hex(32), encoding="utf-8")
        token_path.chmod(0o600)
        token_source = "~/.ray/auth_token (new, written by lmrl cluster up)"
    # Job entrypoints (`lmrl train ...`) run with the head's PATH: put this environment first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    temp = Path(temp_dir or f"/tmp/lmrl-ray-{port}").expanduser().resolve()
    command = [
        _ray_executable(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
        *(f"--{name}={value}" for name, value in extra.items()),
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        command.append(f"--num-gpus={num_gpus}")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        # Whatever did start (a GCS, a dashboard) is found by the temp dir and stopped.
        stop_local_head(LocalHead(f"127.0.0.1:{port}", "", str(temp), {}), grace_s=2.0)
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-5:])
        raise ClusterError(f"`ray start --head` failed (exit {proc.returncode}): {tail}")
    ip = _gcs_ip(output)
    head = LocalHead(
        gcs_address=f"{ip}:{port}",
        dashboard_url=f"http://127.0.0.1:{dashboard_port}",
        temp_dir=str(temp),
        ports={"gcs": port, "dashboard": dashboard_port, **extra},
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        token_source=token_source,
        started_at=time.time(),
    )
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(head), indent=2), encoding="utf-8")
    deadline = time.monotonic() + timeout_s
    while not _answers(head.dashboard_url, "/api/jobs/"):
        if time.monotonic() > deadline:
            stop_local_head(head)
            raise ClusterError(
                f"the head started but its Jobs API at {head.dashboard_url} did not answer within "
                f"{timeout_s:g} s; see the logs in {temp}/session_latest/logs"
            )
        time.sleep(0.5)
    return head


def stop_local_head(head: LocalHead | None = None, grace_s: float = 5.0) -> int:
    """Stops the processes of a local head, and only those; other Ray instances keep running.

    The head's processes are found by its temp dir and GCS address on their
    command lines, together with all their descendants (workers, job drivers).
    They get SIGTERM, then SIGKILL after ``grace_s`` seconds.

    Args:
        head: The head (default: the one recorded in ``$LMRL_HOME/local_cluster.json``).
        grace_s: Seconds between SIGTERM and SIGKILL.

    Returns:
        How many processes were stopped (0 when none was running).
    """
    recorded = read_local_head()
    head = head or recorded
    if head is None:
        return 0
    procs = _head_processes(head)
    for proc in procs:
        with contextlib.suppress(psutil.Error):  # gone already, or not ours to signal
            proc.terminate()
    deadline = time.monotonic() + grace_s
    alive = procs
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [proc for proc in alive if _alive(proc)]
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if recorded is not None and recorded.temp_dir == head.temp_dir:
        _state_file().unlink(missing_ok=True)
    return len(procs)


def _head_processes(head: LocalHead) -> list[psutil.Process]:
    """The head's processes and all their descendants (never this process), by pid."""
    temp_dir = head.temp_dir.rstrip("/") + "/"
    # Ray's client server names the GCS by its routable IP: match any host with our port.
    gcs = re.compile(rf"--(?:gcs-)?address=\S+:{head.gcs_address.rsplit(':', 1)[-1]}(?:\s|$)")
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        args = " ".join(proc.info["cmdline"] or [])
        if temp_dir in args or gcs.search(args):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):  # it exited meanwhile
                found.update((child.pid, child) for child in proc.children(recursive=True))
    found.pop(os.getpid(), None)
    return [found[pid] for pid in sorted(found)]


def _alive(proc: psutil.Process) -> bool:
    """False once the process has exited; a zombie (not yet reaped by its parent) counts as gone."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _answers(url: str, path: str = "/api/version", timeout_s: float = 2.0) -> bool:
    """True when an HTTP server answers at url (any status: 401 means it is up and wants a token)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + path, timeout=timeout_s):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)
    except (OSError, ValueError):
        return False


def _pick_port(port: int, flag: str) -> int:
    if port == 0:
        return _free_port()
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError:
            raise ClusterError(
                f"port {port} is in use (another Ray head?); pass {flag} 0 to pick a free port, "
                "or stop what listens there"
            ) from None
    return port


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _ray_executable() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.is_file() else "ray"


def _gcs_ip(output: str) -> str:
    """The node IP ``ray start`` chose (Ray swaps 127.0.0.1 for the routable address)."""
    match = re.search(r"ray start --address='([^':]+):\d+'", re.sub(r"\x1b\[[0-9;]*m", "", output))
    return match.group(1) if match else "127.0.0.1"
