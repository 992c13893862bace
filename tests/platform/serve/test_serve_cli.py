"""``lmrl serve`` options, ``--print-config``, API keys, one-line errors, and the real command end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
import serve_helpers as h
import yaml

from lmrl.platform.cli import build_parser, main
from lmrl.platform.serve.auth import check_authorization, key_digest, resolve_api_key


@pytest.fixture(scope="module")
def policy(tiny_model_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "support-run"
    h.export_random_policy(tiny_model_dir, run / "export", "choose")
    return run


def test_print_config_is_a_serve_deploy_config(policy, monkeypatch, capsys):
    from ray.serve.schema import ServeDeploySchema

    from lmrl.platform.serve.app import app_builder

    monkeypatch.delenv("LMRL_API_KEY", raising=False)
    argv = ["serve", str(policy), "--replicas", "2", "--max-replicas", "4", "--port", "9000", "--print-config"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    schema = ServeDeploySchema.model_validate(yaml.safe_load(out))
    assert schema.http_options.port == 9000 and schema.http_options.host == "127.0.0.1"
    (app,) = schema.applications
    assert app.import_path == "lmrl.platform.serve.app:app_builder"
    deployments = {d.name: d for d in app.deployments}
    scaling = deployments["PolicyModel"].autoscaling_config
    assert scaling["min_replicas"] == 2 and scaling["max_replicas"] == 4
    assert deployments["PolicyModel"].max_queued_requests == 64
    # The generated key is printed once, on stderr; the config holds only its digest.
    (line,) = [line for line in err.splitlines() if line.startswith("API key")]
    key = line.rsplit(" ", 1)[-1]
    assert key.startswith("lmrl-") and key not in out
    assert app.args["api_key_sha256"] == key_digest(key)
    assert app.args["policy"] == str((policy / "export").resolve())
    built = app_builder(app.args)  # what `serve deploy` calls
    assert type(built).__name__ == "Application"


def test_key_from_env_or_file_is_never_printed(policy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LMRL_API_KEY", "from-env")
    assert main(["serve", str(policy), "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert "from-env" not in out + err and yaml.safe_load(out)["applications"]
    assert key_digest("from-env") in out
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    assert main(["serve", str(policy), "--api-key-file", str(key_file), "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert key_digest("from-file") in out and "from-file" not in err
    assert main(["serve", str(policy), "--no-auth", "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert "auth: false" in out and "--no-auth" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--api-key-file", "/nonexistent/key"], "error: --api-key-file /nonexistent/key: no such file"),
        (["--no-auth", "--api-key-file", "k"], "error: --no-auth and --api-key-file contradict each other"),
        (["--max-n", "32"], "error: --max-n (32) must be <= --max-batch-size (16)"),
        (["--max-replicas", "1", "--replicas", "3"], "error: --max-replicas (1) must be >= --replicas (3)"),
        (["--request-timeout-s", "0"], "error: --request-timeout-s: Input should be greater than 0, got 0.0"),
    ],
)
def test_bad_options_are_one_line_errors(policy, monkeypatch, capsys, extra, message):
    monkeypatch.setenv("LMRL_API_KEY", "k")
    assert main(["serve", str(policy), "--print-config", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message), err


def test_missing_policy_and_busy_port(tmp_path, policy, monkeypatch, capsys):
    monkeypatch.setenv("LMRL_API_KEY", "k")
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["serve", str(policy), "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err


def test_parser_surface():
    args = build_parser().parse_args(["serve", "runs/x", "--host", "0.0.0.0", "--replicas", "2", "--no-auth"])
    assert (args.host, args.port, args.replicas, args.no_auth) == ("0.0.0.0", 8000, 2, True)
    assert build_parser().parse_args(["chat", "http://127.0.0.1:8000"]).url == "http://127.0.0.1:8000"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "runs/x", "--port", "70000"])


def test_api_key_resolution_and_check(tmp_path):
    key, generated = resolve_api_key(None, {})
    assert generated and key.startswith("lmrl-") and len(key) > 30
    assert resolve_api_key(None, {"LMRL_API_KEY": " abc "}) == ("abc", False)
    (tmp_path / "k").write_text("filekey\n")
    assert resolve_api_key(tmp_path / "k", {"LMRL_API_KEY": "abc"}) == ("filekey", False)
    digest = key_digest("abc")
    assert check_authorization("Bearer abc", digest) and check_authorization("bearer  abc ", digest)
    for header in (None, "", "Bearer", "Bearer abd", "abc", "Basic abc", "Bearer abc extra"):
        assert not check_authorization(header, digest), header


@pytest.mark.slow
def test_lmrl_serve_command_end_to_end(policy, tmp_path):
    """The real command in its own process: its own Ray, Serve, the banner, requests, Ctrl-C."""
    port, metrics_port = h.free_port(), h.free_port()
    env = {**os.environ, "LMRL_API_KEY": h.KEY}
    cmd = [sys.executable, "-m", "lmrl.platform.cli", "serve", str(policy), "--port", str(port),
           "--metrics-port", str(metrics_port), "--num-cpus", "0.5"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C stops the server"):
                break
        banner = "".join(lines)
        assert f"serving `support-run` (lmrl/CustomerSupport-v0, choose mode, 1 replica) at http://127.0.0.1:{port}/v1" in banner, banner
        assert "API key: $LMRL_API_KEY" in banner
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz", timeout=30).status_code == 200
        models = httpx.get(base + "/v1/models", headers={"Authorization": f"Bearer {h.KEY}"}, timeout=30)
        assert models.json()["data"][0]["id"] == "support-run"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
