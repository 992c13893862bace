"""``lmrl cluster ...``: validate cluster.yaml; start, stop and inspect a local head.

The cluster side lives in :mod:`lmrl.platform.cluster` and
:mod:`lmrl.platform.jobs`; like the other commands, these import Ray only
when they run.

Example:
    $ lmrl cluster validate cluster.yaml
    $ lmrl cluster up --local --num-cpus 2
    $ lmrl cluster status
    $ lmrl cluster down
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from lmrl.errors import ClusterError
from lmrl.platform.cli import output as out
from lmrl.platform.cli.args import add_address

#: Exit status of ``cluster validate`` when the file has problems.
EXIT_FAILED = 1


def add_commands(commands: Any) -> None:
    """Adds ``cluster`` and its actions to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
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
    add_address(status)
    status.set_defaults(func=_cmd_cluster_status)



def _cmd_cluster_validate(args: argparse.Namespace) -> int:
    from lmrl.platform.cluster import validate_cluster_file

    report = validate_cluster_file(args.path)
    if report.node_types:
        table = out.table(
            f"node types in {args.path}", ["type", "instance", "min", "max", "resources"]
        )
        for node in report.node_types:
            table.add_row(
                out.plain(node.name + (" (head)" if node.is_head else "")),
                out.plain(node.instance_type),
                out.plain("-" if node.is_head else str(node.min_workers)),
                out.plain("-" if node.is_head else str(node.max_workers)),
                out.plain(", ".join(f"{k}: {v}" for k, v in node.resources.items()) or "auto"),
            )
        out.console().print(table)
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
    table = out.table(f"nodes of {jobs.address}", ["node", "ip", "role", "CPU", "GPU", "memory"])
    for node in sorted(nodes, key=lambda n: not n.get("is_head_node")):
        res = node.get("resources_total") or {}
        table.add_row(
            out.plain(str(node.get("node_id", ""))[:12]),
            out.plain(str(node.get("node_ip", "-"))),
            out.plain("head" if node.get("is_head_node") else "worker"),
            out.plain(f"{res.get('CPU', 0):g}"),
            out.plain(f"{res.get('GPU', 0):g}"),
            out.plain(f"{res.get('memory', 0) / 2**30:.1f} GiB"),
        )
    out.console().print(table)
    shown = [k for k in ("CPU", "GPU", "memory", "object_store_memory") if k in usage]
    shown += sorted(k for k in usage if ":" in k and k.startswith("accelerator_type"))
    res_table = out.table("resources (used / total)", ["resource", "used", "total"])
    for key in shown:
        used, total = usage[key]
        if "memory" in key:
            res_table.add_row(key, f"{used / 2**30:.1f} GiB", f"{total / 2**30:.1f} GiB")
        else:
            res_table.add_row(key, f"{used:g}", f"{total:g}")
    out.console().print(res_table)
    active = [j for j in jobs.list_jobs() if str(j.status) in ("PENDING", "RUNNING")]
    job_table = out.table("running jobs", ["submission id", "status", "started", "entrypoint"])
    for job in active:
        job_table.add_row(
            out.plain(job.submission_id or "-"),
            out.plain(str(job.status)),
            out.plain(out.when(job.start_time)),
            out.plain(out.short(job.entrypoint or "", 60)),
        )
    if active:
        out.console().print(job_table)
    else:
        print("no running jobs")
    return 0
