"""Jobs on a real head on loopback: `lmrl cluster up --local`, `lmrl submit`, `lmrl jobs`, token auth.

One head per module, started with `lmrl cluster up --local` (a real `ray start --head`
with token auth, its own temp dir and free ports, so other Ray instances on the machine
are left alone) and stopped with `lmrl cluster down` in the teardown.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from local_head import local_head

pytestmark = pytest.mark.slow

TINY = [
    "--set", "algorithm.train_batch_size=64",
    "--set", "algorithm.minibatch_size=32",
    "--set", "algorithm.num_epochs=1",
    "--set", "resources.num_env_runners=0",
    "--set", "resources.num_envs_per_env_runner=4",
    "--set", "run.stop.iterations=1",
    "--set", "run.eval_episodes=2",
    "--set", "run.progress=false",
]  # fmt: skip
CONFIG = "env:\n  id: lmrl/Maze-v0\n"


class Head:
    """The module's head: its dashboard URL, the token file, and an env that finds both."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token_file = root / "token"
        self.token_file.write_text(secrets.token_hex(32))
        self.env = {
            **os.environ,
            "LMRL_HOME": str(root / "lmrl_home"),
            "RAY_AUTH_TOKEN_PATH": str(self.token_file),
            "COLUMNS": "250",
            "HF_HUB_OFFLINE": "1",
        }
        for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE"):
            self.env.pop(var, None)
        self.url = ""

    def lmrl(
        self, *args: str, env: dict | None = None, timeout: int = 300, cwd: Path | None = None
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "lmrl.platform.cli", *args],
            cwd=cwd or self.root / "work",
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    h = Head(tmp_path_factory.mktemp("cluster"))
    (h.root / "work").mkdir()
    (h.root / "work" / "maze.yaml").write_text(CONFIG)
    with local_head(h.lmrl, h.root / "lmrl_home", num_cpus=2) as (state, _):
        h.url = state["dashboard_url"]
        yield h


def _get(url: str, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_up_binds_the_jobs_api_to_loopback_with_token_auth(head):
    assert head.url.startswith("http://127.0.0.1:")
    status, body = _get(head.url + "/api/jobs/", None)
    assert status == 401 and "Missing authentication token" in body
    status, _ = _get(head.url + "/api/jobs/", "wrong")
    assert status == 403
    status, body = _get(head.url + "/api/jobs/", head.token_file.read_text())
    assert status == 200 and body.startswith("[")
    again = head.lmrl("cluster", "up", "--local", "--port", "0", "--dashboard-port", "0")
    assert again.returncode == 2 and "a local head is already running" in again.stderr


def test_submit_train_waits_and_succeeds_with_a_checkpoint(head):
    start = time.perf_counter()
    proc = head.lmrl("submit", "maze.yaml", *TINY, "--wait", timeout=600)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = re.search(r"submitted job (\S+) to " + re.escape(head.url), proc.stdout).group(1)
    assert re.search(rf"--- job {job_id} SUCCEEDED in [\d.]+ s ---", proc.stdout)
    run_dir = Path(re.search(r"run directory \(on the cluster\): (\S+)", proc.stdout).group(1))
    # A relative run.output_dir on a cluster that is this machine is pinned to the submitting directory.
    assert run_dir == head.root / "work" / "runs" / job_id
    assert (run_dir / "checkpoints").is_dir() and list(
        (run_dir / "checkpoints").glob("iter_00001/*")
    )
    state = json.loads((run_dir / "state.json").read_text())
    assert state["iteration"] == 1 and Path(state["checkpoint"]).is_dir()
    assert (run_dir / "export" / "config.json").is_file()
    print(f"\nlmrl submit --wait of a 1-iteration train job: {wall:.1f} s wall")

    status = head.lmrl("jobs", "status", job_id)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout and str(run_dir) in status.stdout
    listing = head.lmrl("jobs", "list")
    assert job_id in listing.stdout and "train" in listing.stdout
    logs = head.lmrl("jobs", "logs", job_id, "--tail", "5")
    assert logs.returncode == 0 and f"run directory: {run_dir}" in logs.stdout
    stop = head.lmrl("jobs", "stop", job_id)
    assert stop.returncode == 0 and "is not running (SUCCEEDED)" in stop.stdout


def test_the_job_driver_joins_the_cluster(head, monkeypatch):
    """Inside a job, `lmrl train` joins the cluster through RAY_ADDRESS instead of starting its own Ray."""
    from lmrl.platform.jobs import JobsClient

    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token_file))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    jobs = JobsClient(head.url)
    trains = [
        j
        for j in jobs.list_jobs()
        if (j.metadata or {}).get("lmrl_pipeline") == "train" and str(j.status) == "SUCCEEDED"
    ]
    assert trains, "run test_submit_train_waits_and_succeeds_with_a_checkpoint first"
    assert (
        trains[0].job_id and trains[0].driver_info is not None
    )  # a driver registered with this GCS


def test_plain_ray_job_submit_runs_lmrl_train(head):
    out = head.root / "plain_runs"
    env = {**head.env, "RAY_ADDRESS": head.url, "RAY_AUTH_MODE": "token"}
    ray = str(Path(sys.executable).parent / "ray")
    proc = subprocess.run(
        [ray, "job", "submit", "--working-dir", ".", "--",
         "lmrl", "train", "maze.yaml", *TINY, "--set", f"run.output_dir={out}", "--set", "run.name=plain"],
        cwd=head.root / "work", env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout + proc.stderr
    assert list((out / "plain" / "checkpoints").glob("iter_00001/*"))


def test_failing_job_exits_nonzero_with_the_log_tail(head):
    proc = head.lmrl(
        "submit", "--pipeline", "eval", str(head.root / "no-such-run"), "--wait", "--", "-n", "2"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(
        r"error: job \S+ FAILED after [\d.]+ s: Job entrypoint command failed with exit code 2",
        proc.stderr,
    )
    tail = proc.stderr.split("--- last 40 lines of its log ---", 1)[1]
    assert "error: policy path" in tail and "no-such-run" in tail
    assert "full log: lmrl jobs logs lmrl-eval-" in proc.stderr


def test_requests_without_or_with_a_wrong_token_are_refused_clearly(head, tmp_path):
    bare = {**head.env, "HOME": str(tmp_path)}  # no ~/.ray/auth_token there
    bare.pop("RAY_AUTH_TOKEN_PATH")
    proc = head.lmrl("jobs", "list", env=bare)
    assert proc.returncode == 2
    assert (
        f"error: the Ray cluster at {head.url} (from the local head of `lmrl cluster up --local`) refused the request: 401 Unauthorized, no auth token was sent"
        in proc.stderr
    )
    assert "export RAY_AUTH_TOKEN=" in proc.stderr

    proc = head.lmrl("submit", "maze.yaml", *TINY, env={**bare, "RAY_AUTH_TOKEN": "not-the-token"})
    assert proc.returncode == 2
    assert "refused the token from RAY_AUTH_TOKEN: 403 Forbidden, the token is wrong" in proc.stderr

    proc = head.lmrl("jobs", "list", env={**bare, "RAY_AUTH_TOKEN": head.token_file.read_text()})
    assert proc.returncode == 0 and "submission id" in proc.stdout


def test_more_gpus_than_the_cluster_has_fails_before_submitting(head):
    start = time.perf_counter()
    proc = head.lmrl(
        "submit",
        "maze.yaml",
        *TINY,
        "--set",
        "resources.num_learners=2",
        "--set",
        "resources.num_gpus_per_learner=1",
    )
    assert proc.returncode == 2
    assert (
        "error: the config asks for 2 GPU (resources.num_learners (2) x num_gpus_per_learner (1)) "
        f"but the cluster at {head.url} has 0 (1 node: 2 CPU, 0 GPU)"
    ) in proc.stderr
    assert time.perf_counter() - start < 30
    proc = head.lmrl("submit", "maze.yaml", *TINY, "--set", "resources.num_env_runners=4")
    assert proc.returncode == 2 and "asks for 5 CPU" in proc.stderr


def test_an_unschedulable_job_does_not_hang(head):
    start = time.perf_counter()
    proc = head.lmrl(
        "submit",
        "maze.yaml",
        *TINY,
        "--num-gpus",
        "1",
        "--no-resource-check",
        "--wait",
        "--pending-timeout",
        "3",
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(
        r"error: job \S+ is still PENDING: its driver needs 1 CPU, 1 GPU on one node, which no node of the cluster has "
        r"\(1 node: 2 CPU, 0 GPU\) for \d+ s, so lmrl gave up on it",
        proc.stderr,
    )
    assert time.perf_counter() - start < 60


def test_unknown_job_and_cluster_status(head):
    proc = head.lmrl("jobs", "status", "lmrl-train-nope")
    assert proc.returncode == 2 and "no job `lmrl-train-nope` on the cluster" in proc.stderr
    proc = head.lmrl("cluster", "status")
    assert proc.returncode == 0, proc.stderr
    assert f"nodes of {head.url}" in proc.stdout and "head" in proc.stdout and "CPU" in proc.stdout


def test_a_job_whose_actor_cannot_be_placed_is_stopped(head, monkeypatch):
    """The watchdog reads the job's pending actors from Ray's state API and stops the job."""
    from lmrl.errors import ClusterError
    from lmrl.platform.jobs import JobsClient

    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token_file))
    jobs = JobsClient(head.url)
    code = (
        "import ray, time\nray.init()\n"
        "@ray.remote(num_gpus=1)\nclass Hog:\n    pass\n"
        "h = Hog.remote()\ntime.sleep(300)\n"
    )
    job_id = jobs.client.submit_job(entrypoint=f"python -c {shlex.quote(code)}")
    with pytest.raises(
        ClusterError,
        match=r"waits for Hog, which needs (1 CPU, )?1 GPU that no node .* so lmrl stopped it",
    ):
        jobs.follow(job_id, stream=False, pending_timeout_s=2, poll_s=0.5)
    deadline = time.monotonic() + 60
    while jobs.status(job_id) not in ("STOPPED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert jobs.status(job_id) == "STOPPED"
