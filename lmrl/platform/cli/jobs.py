"""``lmrl submit`` and ``lmrl jobs ...``: lmrl pipelines as Ray Jobs on a cluster.

The Jobs API side lives in :mod:`lmrl.platform.jobs`; like the other
commands, these import Ray only when they run.

Example:
    $ lmrl submit maze.yaml --set run.stop.iterations=5 --wait
    $ lmrl jobs list
    $ lmrl jobs logs lmrl-train-1a2b3c --follow
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lmrl.errors import ClusterError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import add_address, add_set_option

#: Exit status of ``submit --wait`` and ``jobs logs --follow`` when the job failed or was stopped.
EXIT_FAILED = 1
_LOG_TAIL_LINES = 40


def add_commands(commands: Any) -> None:
    """Adds ``submit`` and ``jobs`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned (its parser class a
            :class:`~lmrl.platform.cli.args.Parser`); ``submit`` checks the pipeline it runs
            against the commands registered there.
    """
    _add_submit(commands)
    _add_jobs(commands)


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
        pass_through="extra",  # everything after `--` belongs to the pipeline command
    )
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
    add_set_option(
        submit,
        help_text="override a config value, as with `lmrl train` (repeatable)",
        dest="overrides",
    )
    add_address(submit)
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
    submit.set_defaults(func=_cmd_submit, commands=commands)


def _add_jobs(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="list, inspect, follow and stop jobs on a cluster",
        description="Manage Ray Jobs (submitted with `lmrl submit` or `ray job submit`).",
    )
    sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list the cluster's jobs, newest first")
    add_address(listing)
    listing.set_defaults(func=_cmd_jobs_list)

    status = sub.add_parser(
        "status", help="show a job's status, entrypoint, times and run directory"
    )
    status.add_argument("submission_id", metavar="ID")
    add_address(status)
    status.set_defaults(func=_cmd_jobs_status)

    logs = sub.add_parser("logs", help="print a job's output")
    logs.add_argument("submission_id", metavar="ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends"
    )
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    add_address(logs)
    logs.set_defaults(func=_cmd_jobs_logs)

    stop = sub.add_parser("stop", help="stop a running job")
    stop.add_argument("submission_id", metavar="ID")
    stop.add_argument("--wait", action="store_true", help="wait until the job has stopped")
    add_address(stop)
    stop.set_defaults(func=_cmd_jobs_stop)


def _cmd_submit(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import PIPELINES, JobsClient, prepare_submission

    spec = PIPELINES[args.pipeline]
    if not _has_command(args.commands, spec.command):
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


def _has_command(commands: argparse._SubParsersAction, words: tuple[str, ...]) -> bool:
    """Whether this lmrl has the subcommand (another version may run on the cluster).

    Args:
        commands: The ``lmrl`` subcommands.
        words: The command, e.g. ``("data", "collect")``.
    """
    action: argparse._SubParsersAction | None = commands
    for word in words:
        if action is None or word not in action.choices:
            return False
        parser = action.choices[word]
        action = next(
            (a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None
        )
    return True


# --- jobs ---------------------------------------------------------------------------------------


def _cmd_jobs_list(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    rows = jobs.list_jobs()
    table = out.table(
        f"jobs on {jobs.address}",
        ["submission id", "status", "pipeline", "started", "duration", "entrypoint"],
    )
    table.columns[0].no_wrap = True
    for job in rows:
        meta = job.metadata or {}
        table.add_row(
            out.plain(job.submission_id or job.job_id or "-"),
            out.plain(str(job.status)),
            out.plain(meta.get("lmrl_pipeline", "-")),
            out.plain(out.when(job.start_time)),
            out.plain(out.duration(job.start_time, job.end_time)),
            out.plain(out.short(job.entrypoint or "", 60)),
        )
    if not rows:
        print(f"no jobs on {jobs.address} yet; submit one with `lmrl submit CONFIG.yaml`")
        return 0
    out.console().print(table)
    return 0


def _cmd_jobs_status(args: argparse.Namespace) -> int:
    from lmrl.platform.jobs import JobsClient

    jobs = JobsClient(args.address)
    info = jobs.info(args.submission_id)
    meta = dict(info.metadata or {})
    table = out.table(f"job {args.submission_id}", ["", ""], show_header=False)
    table.add_row("status", out.plain(str(info.status)))
    if info.message:
        table.add_row("message", out.plain(" ".join(str(info.message).split())))
    table.add_row("entrypoint", out.plain(info.entrypoint or "-"))
    table.add_row("started", out.plain(out.when(info.start_time)))
    table.add_row("duration", out.plain(out.duration(info.start_time, info.end_time)))
    if meta.get("lmrl_run_dir"):
        table.add_row("run directory", out.plain(meta.pop("lmrl_run_dir")))
    for key, value in meta.items():
        table.add_row(key, out.plain(str(value)))
    out.console().print(table)
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
