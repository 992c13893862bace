"""Profiles the serving path under load: py-spy on Serve's proxy, the ingress and the policy replica.

Deploys the batching-on configuration of ``serving.py``, keeps 32 requests
in flight, and records each Serve process with ``py-spy`` for ``--seconds``;
prints the heaviest frames of each (inclusive share of samples) and writes
the raw profiles to ``--work``/profiles. Used for the serving section of
BENCHMARKS.md.

    python benchmarks/profile_serving.py [--quick] [--seconds 15]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import serving  # noqa: E402

ROLES = {"proxy": "ProxyActor", "ingress": "ApiIngress", "model": "PolicyModel"}


def _pids() -> dict[str, int]:
    import psutil

    found: dict[str, int] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        for role, needle in ROLES.items():
            if needle in line and "bench-batched" in line or (role == "proxy" and needle in line):
                found.setdefault(role, p.info["pid"])
    return found


def top_frames(path: Path, n: int = 18) -> list[tuple[float, str]]:
    """Inclusive share of samples per function (file:line stripped), from a py-spy raw file."""
    total, counts = 0, Counter()
    for line in path.read_text().splitlines():
        stack, _, k = line.rpartition(" ")
        if not k.isdigit():
            continue
        total += int(k)
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
            if name not in seen:
                seen.add(name)
                counts[name] += int(k)
    return [(c / max(1, total), name) for name, c in counts.most_common(n)]


def main() -> None:
    p = common.parser("profile_serving", __doc__)
    p.add_argument("--seconds", type=float, default=15.0)
    args = p.parse_args()
    common.setup(args)
    from lmrl.platform.serve.config import ServeConfig
    from lmrl.platform.serve.launch import deploy_apps
    from lmrl.runtime import init_ray

    preset = "tiny" if args.quick else "small"
    policy_dir = serving.export_policy_dir(
        common.tiny_model(args.work, preset), Path(args.work) / "serving" / f"{preset}-generate"
    )
    texts = serving.prompts(2000)
    init_ray(num_cpus=3)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = ServeConfig(
        policy=policy_dir, auth=False, num_cpus=float(args.threads), max_tokens_limit=serving.MAX_TOKENS,
        max_ongoing_requests=64, max_queued_requests=-1, request_timeout_s=120.0, max_batch_size=32,
        batch_wait_timeout_s=0.005,
    )  # fmt: skip
    (url,) = deploy_apps([(cfg, "bench-batched", "/batched")], "127.0.0.1", port)
    out = Path(args.work) / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    load = threading.Thread(target=lambda: asyncio.run(serving._load(url, texts, 32)), daemon=True)
    load.start()
    time.sleep(3)
    pids = _pids()
    procs = {
        role: subprocess.Popen(
            [
                common.tool("py-spy"),
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(args.seconds)),
                "-r",
                "100",
                "-f",
                "raw",
                "-o",
                str(out / f"serve-{role}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for role, pid in pids.items()
    }
    for proc in procs.values():
        proc.wait()
    for role in procs:
        print(f"\n== {role} (pid {pids[role]}): inclusive share of samples")
        for share, name in top_frames(out / f"serve-{role}.txt"):
            print(f"{share:6.1%}  {name}")
    from ray import serve

    serve.shutdown()


if __name__ == "__main__":
    main()
