"""The platform's error re-exports and formatting, and the Ray runtime helpers that need no Ray."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import lmrl.errors
from lmrl.platform import errors as platform_errors
from lmrl.platform.errors import ConfigError, LmrlError, UnknownEnvError, format_error


def test_errors_are_the_same_classes():
    for name in ("LmrlError", "ConfigError", "EnvError", "UnknownEnvError", "RegistrationError",
                 "InvalidActionError", "PolicyError", "RunError", "did_you_mean"):  # fmt: skip
        assert getattr(platform_errors, name) is getattr(lmrl.errors, name)


def test_format_error_is_one_line():
    assert format_error(ConfigError("bad value\n  in file")) == "bad value in file"
    assert format_error(UnknownEnvError("Unknown env id `x`.")) == "Unknown env id `x`."
    assert format_error(LmrlError()) == "LmrlError"
    assert format_error(ValueError("boom\nbang")) == "ValueError: boom bang"


def _run_python(code: str, tmp_path) -> subprocess.CompletedProcess:
    # A fresh interpreter: this process may hold a Ray started by other tests.
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_init_ray_unreachable_address_fails_fast_with_the_fix(tmp_path):
    port = _closed_port()
    proc = _run_python(
        f"""
        import time
        from lmrl.errors import LmrlError
        from lmrl.runtime import init_ray
        start = time.time()
        try:
            init_ray("127.0.0.1:{port}")
        except LmrlError as exc:
            print("ERR", exc)
        print("SECONDS", time.time() - start)
        import ray
        print("INIT", ray.is_initialized())
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["ERR"].startswith(
        f"cannot connect to Ray at '127.0.0.1:{port}': nothing answers at 127.0.0.1:{port}"
    )
    assert "ray start --head" in lines["ERR"] and "RAY_AUTH_TOKEN" in lines["ERR"]
    assert float(lines["SECONDS"]) < 10
    assert lines["INIT"] == "False"


def test_init_ray_malformed_address(tmp_path):
    proc = _run_python(
        """
        from lmrl.errors import LmrlError
        from lmrl.runtime import init_ray
        try:
            init_ray("my-cluster")
        except LmrlError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert proc.stdout.startswith(
        "Ray address 'my-cluster' is not of the form host:port, ray://host:port or 'auto'; "
        "start a cluster with `ray start --head`"
    ), proc.stdout + proc.stderr


def test_shutdown_ray_is_a_no_op_without_ray(tmp_path):
    proc = _run_python(
        """
        import sys
        from lmrl.runtime import shutdown_ray
        shutdown_ray()
        shutdown_ray()
        print("ray imported:", "ray" in sys.modules)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ray imported: False"
