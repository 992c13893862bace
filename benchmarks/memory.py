"""Memory: peak RSS of ``lmrl quickstart`` and of a serve replica, against the floor each one stands on.

Every process is a subprocess of this script, sampled every 0.2 s with
psutil (its whole process tree: Ray's GCS, raylet and workers are
descendants of the driver). Figures: the peak of the tree's summed RSS
(shared pages counted once per process, so an upper bound), and the peak of
the largest single process.

* ``lmrl quickstart`` (full: the real command; ``--quick``: ``--no-warm-start``
  and 2 PPO iterations) against the floor of any Ray + torch program here: a
  driver that starts the same local Ray, imports torch and transformers and
  loads the tiny model.
* The policy replica of ``lmrl serve`` (the Ray worker titled
  ``ServeReplica:...PolicyModel``), started by the script on a free loopback
  port and answering a burst of requests, against a bare process that loads
  the same policy with :class:`lmrl.policies.text_policy.TextPolicy` and
  decodes the same requests.

    python benchmarks/memory.py            # full (the whole quickstart: minutes)
    python benchmarks/memory.py --quick
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MiB = 1 << 20


def lmrl_command(*args: str) -> list[str]:
    """``lmrl ARGS`` started from this interpreter, not looked up on ``PATH``.

    A user who runs ``.venv/bin/lmrl bench`` without activating the venv has no ``lmrl``
    on ``PATH``; ``python -m lmrl.platform.cli`` with this process's Python always resolves.
    """
    return [sys.executable, "-m", "lmrl.platform.cli", *args]


def quickstart_command(out: Path, quick: bool) -> list[str]:
    """The ``lmrl quickstart`` this benchmark measures (quick: no warm start, 2 iterations)."""
    cmd = lmrl_command("quickstart", "--out", str(out))
    if quick:
        cmd += ["--no-warm-start", "--set", "run.stop.iterations=2"]
    return cmd


def serve_command(policy_dir: str, port: int, metrics_port: int) -> list[str]:
    """The ``lmrl serve`` whose policy replica this benchmark measures."""
    return lmrl_command("serve", policy_dir, "--no-auth", "--port", str(port),
                        "--metrics-port", str(metrics_port), "--max-tokens-limit", "16")  # fmt: skip


class TreeSampler:
    """Samples the RSS of a process and its descendants in a background thread."""

    def __init__(self, pid: int, match: str | None = None, period: float = 0.2) -> None:
        self.pid, self.match, self.period = pid, match, period
        self.peak_tree = 0
        self.peak_single = 0
        self.peak_match = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    if self.match and self.match in " ".join(p.cmdline()):
                        self.peak_match = max(self.peak_match, rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_tree = max(self.peak_tree, total)
            self.processes = max(self.processes, len(procs))
            self._stop.wait(self.period)

    def summary(self) -> dict[str, Any]:
        out = {"peak_tree_rss_mib": round(self.peak_tree / MiB, 1), "peak_single_rss_mib": round(self.peak_single / MiB, 1),
               "max_processes": self.processes}  # fmt: skip
        if self.match:
            out["peak_match_rss_mib"] = round(self.peak_match / MiB, 1)
        return out


def _env(args) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def measured(cmd: list[str], args, timeout: float, match: str | None = None) -> dict[str, Any]:
    """Runs ``cmd`` to the end under the sampler."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    with TreeSampler(proc.pid, match) as sampler:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}): {(err or '').strip()[-800:]}"
        )
    return {
        **sampler.summary(),
        "seconds": round(time.perf_counter() - start, 1),
        "command": " ".join(cmd),
    }


RAY_FLOOR = """
import sys, time, ray, torch, transformers
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
ray.get(ray.remote(lambda: 1).remote())  # one worker process, as any Ray program starts
time.sleep(3)
"""

BARE_POLICY = """
import json, sys, torch
from lmrl.policies.decoding import DecodeRequest, SamplingParams, decode
from lmrl.policies.text_policy import TextPolicy
torch.set_num_threads(1)
policy = TextPolicy.from_pretrained(sys.argv[1])
texts = json.loads(sys.argv[2])
for k in range(0, len(texts), 8):
    decode(policy, [DecodeRequest(t, (), SamplingParams(max_tokens=16, seed=i)) for i, t in enumerate(texts[k:k + 8])])
"""


def serve_replica(policy_dir: str, texts: list[str], args) -> dict[str, Any]:
    """``lmrl serve`` as a subprocess; the peak RSS of its policy replica while it answers ``texts``."""
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        metrics_port = sock.getsockname()[1]
    cmd = serve_command(policy_dir, port, metrics_port)
    proc = subprocess.Popen(cmd, env=_env(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with TreeSampler(proc.pid, match="PolicyModel") as sampler:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"lmrl serve exited: {proc.stderr.read()[-800:] if proc.stderr else ''}"
                    )
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            with httpx.Client(base_url=url, timeout=60) as client:
                for i, text in enumerate(texts):
                    body = {"prompt": text, "max_tokens": 16, "seed": i, "n": 1}
                    client.post("/v1/completions", json=body).raise_for_status()
            time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # the process group this script started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = sampler.summary()
    out["replica_peak_rss_mib"] = out.pop("peak_match_rss_mib")
    out["command"] = " ".join(cmd)
    return out


def main(argv: list[str] | None = None) -> None:
    args = common.parser("memory", __doc__).parse_args(argv)
    started = common.setup(args)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serving import export_policy_dir, prompts

    work = Path(args.work) / "memory"
    model_dir = common.tiny_model(args.work, "tiny")
    out = work / f"quickstart-{time.strftime('%H%M%S')}"
    quickstart = measured(quickstart_command(out, args.quick), args, timeout=1800)
    floor = measured([sys.executable, "-c", RAY_FLOOR, model_dir], args, timeout=300)
    policy_dir = export_policy_dir(model_dir, Path(args.work) / "serving" / "tiny-generate")
    texts = prompts(16 if args.quick else 64)
    replica = serve_replica(policy_dir, texts, args)
    bare = measured(
        [sys.executable, "-c", BARE_POLICY, policy_dir, json.dumps(texts)], args, timeout=300
    )
    rows = [
        ["lmrl quickstart" + (" (quick: no warm start, 2 iterations)" if args.quick else ""),
         quickstart["peak_tree_rss_mib"], quickstart["peak_single_rss_mib"], quickstart["max_processes"], quickstart["seconds"]],
        ["floor: Ray + torch + tiny model, idle", floor["peak_tree_rss_mib"], floor["peak_single_rss_mib"],
         floor["max_processes"], floor["seconds"]],
        ["lmrl serve: the policy replica", None, replica["replica_peak_rss_mib"], None, None],
        ["lmrl serve: all its processes", replica["peak_tree_rss_mib"], replica["peak_single_rss_mib"], replica["max_processes"], None],
        ["bare process: TextPolicy + decode", bare["peak_tree_rss_mib"], bare["peak_single_rss_mib"], bare["max_processes"], bare["seconds"]],
    ]  # fmt: skip
    common.report(
        "memory",
        args,
        title="Peak RSS (MiB), sampled every 0.2 s over each process tree",
        columns=["what", "tree RSS MiB", "largest process MiB", "processes", "seconds"],
        rows=rows,
        lmrl={"quickstart": quickstart, "serve": replica},
        baseline={"ray_torch_floor": floor, "bare_policy_process": bare},
        ratio_value=common.ratio(replica["replica_peak_rss_mib"], bare["peak_single_rss_mib"]),
        ratio_meaning="serve replica peak RSS / bare policy process peak RSS (lower is better)",
        extra={
            "quickstart_tree_over_floor": common.ratio(
                quickstart["peak_tree_rss_mib"], floor["peak_tree_rss_mib"]
            )
        },
        started=started,
    )


if __name__ == "__main__":
    main()
