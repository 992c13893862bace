"""Joining a token-protected head by address with the token in ~/.ray/auth_token and no RAY_AUTH_*.

One head per module: `lmrl cluster up --local` (a real `ray start --head` with
`RAY_AUTH_MODE=token`, its own temp dir and free ports), stopped with `lmrl cluster down`.
Everything runs with a temp HOME whose `.ray/auth_token` is the only place the token
is, and with RAY_AUTH_MODE, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH and RAY_ADDRESS removed
from the environment: a user who ran `ray get-auth-token` once and exported nothing.

Issue 15: Ray reads RAY_AUTH_MODE into its C++ config when it is imported and again
while `ray.init` connects (the core worker re-initialises the config from the
environment), so a mode set only around `ray.init` never reached the GCS client, and
every join by address was refused with "InvalidAuthToken".
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from local_head import local_head

pytestmark = pytest.mark.slow

_AUTH_VARS = (
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    "RAY_ADDRESS",
    "RAY_API_SERVER_ADDRESS",
)


class Head:
    """The module's head and an environment whose only token is ``$HOME/.ray/auth_token``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        home = root / "home"
        (home / ".ray").mkdir(parents=True)
        (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in _AUTH_VARS},
            "HOME": str(home),
            "LMRL_HOME": str(root / "lmrl_home"),
            "COLUMNS": "250",
            "HF_HUB_OFFLINE": "1",
        }
        self.gcs_address = ""
        self.url = ""

    def run(self, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def lmrl(self, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        proc = self.run("-m", "lmrl.platform.cli", *args, timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    h = Head(tmp_path_factory.mktemp("join_auth"))
    with local_head(h.lmrl, h.root / "lmrl_home", num_cpus=1) as (state, up):
        assert "token from ~/.ray/auth_token" in up.stdout, up.stdout
        h.gcs_address, h.url = state["gcs_address"], state["dashboard_url"]
        yield h


_JOIN = """
import os, sys, time
import ray  # already imported, as in `lmrl train` (RLlib) or a notebook: Ray has read its config
from lmrl.errors import LmrlError
from lmrl.runtime import init_ray, shutdown_ray

assert not any(k.startswith("RAY_AUTH") for k in os.environ), sorted(os.environ)
start = time.perf_counter()
try:
    init_ray(sys.argv[1])
except LmrlError as exc:
    print("ERR", exc)
    raise SystemExit(1)
print("JOINED", ray.get(ray.remote(lambda: 6 * 7).remote()), f"{time.perf_counter() - start:.1f}")
print("NODES", len(ray.nodes()))
shutdown_ray()
"""


def test_init_ray_joins_by_address_with_only_the_token_file(head):
    proc = head.run("-c", _JOIN, head.gcs_address, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "JOINED 42" in proc.stdout and "NODES 1" in proc.stdout, proc.stdout
    assert "InvalidAuthToken" not in proc.stderr, proc.stderr[-3000:]


def test_jobs_and_cluster_commands_send_the_token_file(head):
    """The Jobs API and the state API (HTTP, with the token as a header) by address."""
    status = head.lmrl("cluster", "status", "--address", head.url)
    assert status.returncode == 0, status.stderr
    assert "head" in status.stdout and "CPU" in status.stdout
    listing = head.lmrl("jobs", "list", "--address", head.url)
    assert listing.returncode == 0, listing.stderr
