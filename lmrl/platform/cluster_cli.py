"""The cluster commands of ``lmrl``: ``submit``, ``jobs ...`` and ``cluster ...``.

:func:`add_commands` registers them on the ``lmrl`` parser
(:func:`lmrl.platform.cli.build_parser`). Like the other commands, they
import Ray only when they run.

Example:
    $ lmrl cluster validate cluster.yaml
    $ lmrl cluster up --local --num-cpus 2
    $ lmrl submit maze.yaml --set run.stop.iterations=5 --wait
    $ lmrl jobs list
    $ lmrl cluster down
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lmrl.errors import ClusterError

__all__ = ["add_commands"]

#: Exit status of ``submit --wait`` and ``cluster validate`` when the job failed / the file has problems.
EXIT_FAILED = 1
_LOG_TAIL_LINES = 40


def add_commands(commands: Any) -> None:
    """Adds ``submit``, ``jobs`` and ``cluster`` to the ``lmrl`` subcommands.

    Args:
        commands: The ``add_subparsers()`` action of the ``lmrl`` parser.
    """
    _add_submit(commands)
    _add_jobs(commands)
    _add_cluster(commands)


# --- parsers --------------------------------------------------------------------------------


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        metavar="URL",
        help="the cluster's dashboard / Jobs API, e.g. http://127.0.0.1:8265 (default: "
        "$RAY_API_SERVER_ADDRESS, $RAY_ADDRESS, the local head, http://127.0.0.1:8265)",
    )


def _add_submit(commands: Any) -> None:
    from lmrl.platform.jobs import PIPELINES

    submit = commands.add_parser(
        "submit",
        help="run an lmrl pipeline (train, eval, pretrain, ...) as a Ray Job on a cluster",
        description="Submits `lmrl PIPELINE TARGET [--set ...] [-- EXTRA ...]` as a Ray Job: the "
        "working directory is uploaded (without .venv, runs, .git, caches), the auth token is "
        "found and sent, and a train config is validated and checked against the cluster's "
        "resources first.",
        epilog="examples:\n"
        "  lmrl submit maze.yaml --set run.stop.iterations=50 --wait\n"
        "  lmrl submit maze.yaml --storage /mnt/shared/runs --address http://127.0.0.1:8265\n"
        "  lmrl submit --pipeline eval /mnt/shared/runs/maze -- -n 200\n"
        "  lmrl submit --pipeline data-collect lmrl/Maze-v0 -- --policy expert -n 100 -o /mnt/shared/maze.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Everything after `--` belongs to the pipeline command, wherever the options stand.
    submit.__class__ = _PassThroughParser
    submit.add_argument(
        "target",
        metavar="TARGET",
        help="a config file for train/pretrain/finetune, a run or export directory on the "
        "cluster for eval/serve, an env id for data-collect",
    )
    submit.add_argument(
        "extra",
        nargs="*",
        metavar="-- EXTRA",
        help="more arguments for the pipeline command, after `--` (e.g. -- -n 200)",
    )
    submit.add_argument(
        "--pipeline",
        choices=list(PIPELINES),
        default="train",
        help="which lmrl command the job runs (default: train)",
    )
    submit.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, as with `lmrl train` (repeatable)",
    )
    _add_address(submit)
    submit.add_argument(
        "--working-dir",
        default=".",
        metavar="DIR",
        help="uploaded as the job's working directory; the config must lie in it (default: .)",
    )
    submit.add_argument(
        "--storage",
        metavar="DIR",
        help="train: the run's output directory on the cluster (sets run.output_dir); a path "
        "every node can write, e.g. an NFS/EFS mount",
    )
    submit.add_argument("--submission-id", metavar="ID", help="the job's id (default: generated)")
    submit.add_argument(
        "--num-cpus",
        type=float,
        metavar="N",
        help="CPUs reserved for the job's driver (default: 1)",
    )
    submit.add_argument(
        "--num-gpus",
        type=float,
        metavar="N",
        help="GPUs reserved for the driver (train default: the learner's GPUs when "
        "resources.num_learners is 0, else 0)",
    )
    submit.add_argument(
        "--env",
        dest="env_vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the job (repeatable)",
    )
    submit.add_argument(
        "--no-resource-check",
        action="store_true",
        help="submit even if the cluster's nodes cannot hold the request now "
        "(an autoscaler that starts nodes on demand)",
    )
    submit.add_argument(
        "--wait",
        action="store_true",
        help="stream the job's output and exit with its status (0 succeeded, 1 failed or stopped)",
    )
    submit.add_argument(
        "--pending-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="with --wait: stop the job if it cannot be scheduled for S seconds (default: 600)",
    )
    submit.add_argument(
        "--dry-run", action="store_true", help="print the job that would be submitted and stop"
    )
    submit.set_defaults(func=_cmd_submit)


def _add_jobs(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list, inspect, follow and stop jobs on a cluster",
        description="Manage Ray Jobs (submitted with `lmrl submit` or `ray job submit`).",
    )
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list the cluster's jobs, newest first")
    _add_address(listing)
    listing.set_defaults(func=_cmd_jobs_list)

    status = sub.add_parser(
        "status", help="show a job's status, entrypoint, times and run directory"
    )
    status.add_argument("submission_id", metavar="ID")
    _add_address(status)
    status.set_defaults(func=_cmd_jobs_status)

    logs = sub.add_parser("logs", help="print a job's output")
    logs.add_argument("submission_id", metavar="ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends"
    )
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    _add_address(logs)
    logs.set_defaults(func=_cmd_jobs_logs)

    stop = sub.add_parser("stop", help="stop a running job")
    stop.add_argument("submission_id", metavar="ID")
    stop.add_argument("--wait", action="store_true", help="wait until the job has stopped")
    _add_address(stop)
    stop.set_defaults(func=_cmd_jobs_stop)


def _add_cluster(commands: Any) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="validate cluster.yaml; start, stop and inspect a local head",
        description="Cluster tools. Cloud clusters start with `ray up cluster.yaml`; "
        "`lmrl cluster up --local` starts a one-node cluster on this machine.",
    )
    sub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    validate = sub.add_parser(
        "validate",
        help="check a cluster config with Ray's validator and lmrl's rules; exit 1 on a problem",
    )
    validate.add_argument(
        "path",
        nargs="?",
        default="cluster.yaml",
        metavar="CLUSTER.yaml",
        help="(default: cluster.yaml)",
    )
    validate.set_defaults(func=_cmd_cluster_validate)

    up = sub.add_parser(
        "up",
        help="start a local head on 127.0.0.1 with token auth (--local)",
        description="Starts a one-node Ray cluster on this machine: `ray start --head` with "
        "RAY_AUTH_MODE=token and the dashboard / Jobs API on 127.0.0.1.",
    )
    up.add_argument("--local", action="store_true", help="start the head on this machine")
    up.add_argument(
        "--port",
        type=int,
        default=6379,
        metavar="P",
        help="GCS port (0: any free port; default 6379)",
    )
    up.add_argument(
        "--dashboard-port",
        type=int,
        default=8265,
        metavar="P",
        help="dashboard / Jobs API port (0: any; default 8265)",
    )
    up.add_argument("--num-cpus", type=int, metavar="N", help="CPUs offered to Ray (default: all)")
    up.add_argument(
        "--num-gpus", type=int, metavar="N", help="GPUs offered to Ray (default: detected)"
    )
    up.add_argument(
        "--temp-dir",
        metavar="DIR",
        help="Ray's temp dir for this head (default: /tmp/lmrl-ray-PORT)",
    )
    up.set_defaults(func=_cmd_cluster_up)

    down = sub.add_parser("down", help="stop the local head started by `lmrl cluster up --local`")
    down.set_defaults(func=_cmd_cluster_down)

    status = sub.add_parser("status", help="list the cluster's nodes, resources and running jobs")
    _add_address(status)
    status.set_defaults(func=_cmd_cluster_status)


# --- submit -------------------------------------------------------------------------------------


class _PassThroughParser(argparse.ArgumentParser):
    """Keeps the arguments after ``--`` for the pipeline command (``extra``), unparsed.

    argparse fills positionals in one go, so ``submit TARGET --wait -- -n 2``
    would leave ``-- -n 2`` unrecognised; this parser splits them off first.
    """

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """Parses the arguments before ``--``; those after it go to ``namespace.extra``."""
        args = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, extra = args[:cut], args[cut + 1 :]
        namespace, unknown = super().parse_known_args(args, namespace)
        namespace.extra = list(namespace.extra or []) + extra
        return namespace, unknown


def _cmd_submit(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import PIPELINES, JobsClient, prepare_submission

    spec = PIPELINES[args.pipeline]
    if not _has_command(spec.command):
        raise ClusterError(
            f"this lmrl has no `lmrl {' '.join(spec.command)}` command, so the job would fail on "
            "the cluster; update lmrl or choose another --pipeline"
        )
    submission = prepare_submission(
        args.pipeline,
        args.target,
        overrides=args.overrides,
        extra_args=args.extra,
        working_dir=args.working_dir,
        storage=args.storage,
        submission_id=args.submission_id,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        env_vars=args.env_vars,
    )
    if args.dry_run:
        _print_submission(submission, address=None)
        return 0
    jobs = JobsClient(args.address)
    if submission.relative_output_dir:
        if not jobs.is_this_machine():
            raise ClusterError(
                f"run.output_dir is relative ({Path(submission.run_dir or '').parent}), and the job "
                "would write into its temporary copy of the working dir, which Ray deletes; pass "
                "--storage DIR with a path every node of the cluster can write (an NFS/EFS mount), "
                "or set run.output_dir to an absolute path"
            )
        submission.pin_output_dir(Path.cwd())
    if not args.no_resource_check:
        jobs.check_resources(submission.request)
    job_id = jobs.submit(submission)
    _print_submission(submission, address=jobs.address)
    if not args.wait:
        print(f"follow: lmrl jobs logs {job_id} --follow")
        print(f"status: lmrl jobs status {job_id}")
        print(f"stop:   lmrl jobs stop {job_id}")
        return 0
    driver = submission.request.bundles[0][1] if submission.request.bundles else {}
    return _wait(jobs, job_id, submission.run_dir, args.pending_timeout, driver)


def _wait(
    jobs: Any, job_id: str, run_dir: str | None, pending_timeout_s: float, driver: dict[str, float]
) -> int:
    print(f"--- output of {job_id} ---", flush=True)
    try:
        result = jobs.follow(job_id, pending_timeout_s=pending_timeout_s, driver=driver)
    except KeyboardInterrupt:
        print(f"\nthe job keeps running; stop it with: lmrl jobs stop {job_id}", file=sys.stderr)
        raise
    sys.stdout.flush()
    if result.status == "SUCCEEDED":
        print(f"--- job {job_id} SUCCEEDED in {result.seconds:.1f} s ---")
        if run_dir:
            print(f"run directory (on the cluster): {run_dir}")
        return 0
    # Ray appends the log to its message; the tail below shows it once, line by line.
    message = " ".join(result.message.split(", last available logs")[0].split())
    print(
        f"error: job {job_id} {result.status} after {result.seconds:.1f} s"
        + (f": {message}" if message else ""),
        file=sys.stderr,
    )
    tail = jobs.log_tail(job_id, _LOG_TAIL_LINES)
    if tail:
        print(f"--- last {_LOG_TAIL_LINES} lines of its log ---\n{tail}", file=sys.stderr)
    print(f"full log: lmrl jobs logs {job_id}", file=sys.stderr)
    return EXIT_FAILED


def _print_submission(submission: Any, address: str | None) -> None:
    if address is None:
        print(f"dry run: job {submission.submission_id} (not submitted)")
    else:
        print(f"submitted job {submission.submission_id} to {address}")
    print(f"  entrypoint:  {submission.entrypoint}")
    print(f"  working dir: {submission.runtime_env['working_dir']}")
    resources = f"{submission.entrypoint_num_cpus:g} CPU"
    if submission.entrypoint_num_gpus:
        resources += f", {submission.entrypoint_num_gpus:g} GPU"
    print(f"  driver:      {resources}")
    totals = ", ".join(f"{v:g} {k}" for k, v in submission.request.totals.items())
    print(f"  all told:    {totals}")
    if submission.run_dir:
        print(f"  run dir:     {submission.run_dir}")


def _has_command(words: tuple[str, ...]) -> bool:
    """Whether this lmrl's parser has the subcommand (another version may run on the cluster)."""
    from lmrl.platform.cli import build_parser

    parser: argparse.ArgumentParser = build_parser()
    for word in words:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            return False
        parser = actions[0].choices[word]
    return True


# --- jobs ---------------------------------------------------------------------------------------


def _cmd_jobs_list(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    rows = jobs.list_jobs()
    table = _table(
        f"jobs on {jobs.address}",
        ["submission id", "status", "pipeline", "started", "duration", "entrypoint"],
    )
    table.columns[0].no_wrap = True
    for job in rows:
        meta = job.metadata or {}
        table.add_row(
            _plain(job.submission_id or job.job_id or "-"),
            _plain(str(job.status)),
            _plain(meta.get("lmrl_pipeline", "-")),
            _plain(_when(job.start_time)),
            _plain(_duration(job.start_time, job.end_time)),
            _plain(_short(job.entrypoint or "", 60)),
        )
    if not rows:
        print(f"no jobs on {jobs.address} yet; submit one with `lmrl submit CONFIG.yaml`")
        return 0
    _console().print(table)
    return 0


def _cmd_jobs_status(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    info = jobs.info(args.submission_id)
    meta = dict(info.metadata or {})
    table = _table(f"job {args.submission_id}", ["", ""], show_header=False)
    table.add_row("status", _plain(str(info.status)))
    if info.message:
        table.add_row("message", _plain(" ".join(str(info.message).split())))
    table.add_row("entrypoint", _plain(info.entrypoint or "-"))
    table.add_row("started", _plain(_when(info.start_time)))
    table.add_row("duration", _plain(_duration(info.start_time, info.end_time)))
    if meta.get("lmrl_run_dir"):
        table.add_row("run directory", _plain(meta.pop("lmrl_run_dir")))
    for key, value in meta.items():
        table.add_row(key, _plain(str(value)))
    _console().print(table)
    return 0


def _cmd_jobs_logs(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    if args.follow:
        result = jobs.follow(args.submission_id, stream=True, pending_timeout_s=float("inf"))
        print(f"--- job {args.submission_id} {result.status} ---", file=sys.stderr)
        return 0 if result.status == "SUCCEEDED" else EXIT_FAILED
    text = jobs.logs(args.submission_id)
    if args.tail is not None:
        text = "\n".join(text.rstrip("\n").splitlines()[-args.tail :]) + "\n"
    sys.stdout.write(text)
    return 0


def _cmd_jobs_stop(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import TERMINAL, JobsClient

    jobs = JobsClient(args.address)
    if not jobs.stop(args.submission_id):
        print(f"job {args.submission_id} is not running ({jobs.status(args.submission_id)})")
        return 0
    print(f"stop requested for job {args.submission_id}")
    if args.wait:
        while (status := jobs.status(args.submission_id)) not in TERMINAL:
            time.sleep(1)
        print(f"job {args.submission_id} {status}")
    return 0


# --- cluster ------------------------------------------------------------------------------------


def _cmd_cluster_validate(args: argparse.Namespace) -> int:
    from lmrl.platform.cluster import validate_cluster_file

    report = validate_cluster_file(args.path)
    if report.node_types:
        table = _table(
            f"node types in {args.path}", ["type", "instance", "min", "max", "resources"]
        )
        for node in report.node_types:
            table.add_row(
                _plain(node.name + (" (head)" if node.is_head else "")),
                _plain(node.instance_type),
                _plain("-" if node.is_head else str(node.min_workers)),
                _plain("-" if node.is_head else str(node.max_workers)),
                _plain(", ".join(f"{k}: {v}" for k, v in node.resources.items()) or "auto"),
            )
        _console().print(table)
    for note in report.notes:
        print(f"note: {note}")
    if report.ok:
        print(f"{args.path} is valid: Ray's cluster schema, token auth on every node, "
              "nothing bound to 0.0.0.0, GPU worker types present")  # fmt: skip
        return 0
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    count = len(report.problems)
    print(f"{args.path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
    return EXIT_FAILED


def _cmd_cluster_up(args: argparse.Namespace) -> int:
    from lmrl.platform.cluster import start_local_head

    if not args.local:
        raise ClusterError(
            "`lmrl cluster up` starts a head on this machine and needs --local; for a cloud "
            "cluster run `lmrl cluster validate cluster.yaml` and then `ray up cluster.yaml`"
        )
    start = time.perf_counter()
    head = start_local_head(
        port=args.port,
        dashboard_port=args.dashboard_port,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        temp_dir=args.temp_dir,
    )
    print(
        f"local head up in {time.perf_counter() - start:.1f} s (token auth on; token from {head.token_source})"
    )
    print(f"  Jobs API / dashboard: {head.dashboard_url} (127.0.0.1 only)")
    print(f"  Ray address (ray.init, resources.address): {head.gcs_address}")
    print(f"  logs: {head.temp_dir}/session_latest/logs")
    print("next:")
    print("  lmrl submit CONFIG.yaml --wait      (this head is found automatically)")
    print(f"  export RAY_ADDRESS={head.dashboard_url}   (for `ray job ...` commands)")
    print("  lmrl cluster status")
    print("  lmrl cluster down")
    return 0


def _cmd_cluster_down(args: argparse.Namespace) -> int:
    from lmrl.platform.cluster import read_local_head, stop_local_head

    head = read_local_head()
    if head is None:
        print("no local head is recorded (nothing started with `lmrl cluster up --local`)")
        return 0
    count = stop_local_head(head)
    if count:
        print(f"local head stopped ({count} processes; dashboard was {head.dashboard_url})")
    else:
        print(f"the local head at {head.dashboard_url} was not running; record removed")
    return 0


def _cmd_cluster_status(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    nodes = jobs.nodes()
    usage = jobs.usage()
    table = _table(f"nodes of {jobs.address}", ["node", "ip", "role", "CPU", "GPU", "memory"])
    for node in sorted(nodes, key=lambda n: not n.get("is_head_node")):
        res = node.get("resources_total") or {}
        table.add_row(
            _plain(str(node.get("node_id", ""))[:12]),
            _plain(str(node.get("node_ip", "-"))),
            _plain("head" if node.get("is_head_node") else "worker"),
            _plain(f"{res.get('CPU', 0):g}"),
            _plain(f"{res.get('GPU', 0):g}"),
            _plain(f"{res.get('memory', 0) / 2**30:.1f} GiB"),
        )
    _console().print(table)
    shown = [k for k in ("CPU", "GPU", "memory", "object_store_memory") if k in usage]
    shown += sorted(k for k in usage if ":" in k and k.startswith("accelerator_type"))
    res_table = _table("resources (used / total)", ["resource", "used", "total"])
    for key in shown:
        used, total = usage[key]
        if "memory" in key:
            res_table.add_row(key, f"{used / 2**30:.1f} GiB", f"{total / 2**30:.1f} GiB")
        else:
            res_table.add_row(key, f"{used:g}", f"{total:g}")
    _console().print(res_table)
    active = [j for j in jobs.list_jobs() if str(j.status) in ("PENDING", "RUNNING")]
    job_table = _table("running jobs", ["submission id", "status", "started", "entrypoint"])
    for job in active:
        job_table.add_row(
            _plain(job.submission_id or "-"),
            _plain(str(job.status)),
            _plain(_when(job.start_time)),
            _plain(_short(job.entrypoint or "", 60)),
        )
    if active:
        _console().print(job_table)
    else:
        print("no running jobs")
    return 0


# --- output helpers ----------------------------------------------------------------------------


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False)


def _table(title: str, columns: list[str], show_header: bool = True) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=show_header, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def _plain(text: str) -> Any:
    from rich.text import Text

    return Text(text)


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _duration(start_ms: int | None, end_ms: int | None) -> str:
    if not start_ms:
        return "-"
    seconds = ((end_ms or time.time() * 1000) - start_ms) / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
