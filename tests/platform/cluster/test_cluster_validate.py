"""cluster.yaml validation, job preparation, address/token discovery: everything that needs no Ray head."""

from __future__ import annotations

import copy
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmrl.errors import ClusterError, ConfigError
from lmrl.platform.cli import build_parser, main
from lmrl.platform.cluster import validate_cluster_config, validate_cluster_file
from lmrl.platform.jobs import (
    WORKING_DIR_EXCLUDES,
    JobsClient,
    prepare_submission,
    resolve_address,
)
from lmrl.ray_access import (
    auth_headers,
    discover_token,
    ray_auth_env,
    unreachable_reason,
)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = yaml.safe_load((ROOT / "cluster.yaml").read_text())


def broken(**changes) -> dict:
    data = copy.deepcopy(SHIPPED)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def strip_auth(commands: list[str]) -> list[str]:
    return [
        c.replace("RAY_AUTH_MODE=token ", "")
        for c in commands
        if "RAY_AUTH_MODE" not in c or "ray start" in c
    ]


# --- cluster validate -----------------------------------------------------------------------


def test_shipped_cluster_yaml_passes_with_gpu_types(capsys):
    report = validate_cluster_file(ROOT / "cluster.yaml")
    assert report.ok, report.problems
    gpu = {t.name: t.resources["GPU"] for t in report.node_types if t.resources.get("GPU")}
    assert gpu == {"gpu_a10g": 1, "gpu_a10g_x4": 4}
    assert report.node_types[0].is_head and "GPU" not in report.node_types[0].resources

    assert main(["cluster", "validate", str(ROOT / "cluster.yaml")]) == 0
    out = capsys.readouterr().out
    assert "is valid" in out and "gpu_a10g_x4" in out


def test_shipped_cluster_yaml_keeps_the_dashboard_on_loopback_and_mounts_the_token():
    head = " ".join(SHIPPED["head_start_ray_commands"])
    assert (
        "--dashboard-host=127.0.0.1" in head
        and "0.0.0.0" not in (ROOT / "cluster.yaml").read_text()
    )
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in " ".join(
        SHIPPED["worker_start_ray_commands"]
    )
    assert SHIPPED["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert set(SHIPPED["rsync_exclude"]) >= {".venv", ".git", "runs"}
    assert any("ray[default,rllib,train,serve]==2.60.0" in c for c in SHIPPED["setup_commands"])


def test_no_auth_is_named():
    data = broken(
        head_start_ray_commands=strip_auth(SHIPPED["head_start_ray_commands"]),
        worker_start_ray_commands=strip_auth(SHIPPED["worker_start_ray_commands"]),
        setup_commands=[c for c in SHIPPED["setup_commands"] if "RAY_AUTH_MODE" not in c],
    )
    problems = validate_cluster_config(data, "c.yaml").problems
    assert len(problems) == 2
    assert problems[0].startswith(
        "c.yaml: token auth is off on the head nodes: head_start_ray_commands never sets RAY_AUTH_MODE=token"
    )
    assert "worker nodes" in problems[1]


def test_disabled_auth_and_unmounted_token_are_named():
    data = broken(file_mounts={"~/lmrl": "."})
    data["worker_start_ray_commands"] = [
        c.replace("RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled")
        for c in SHIPPED["worker_start_ray_commands"]
    ]
    data["setup_commands"] = [c for c in SHIPPED["setup_commands"] if "RAY_AUTH_MODE" not in c]
    problems = validate_cluster_config(data, "c.yaml").problems
    assert any("switched off on the worker nodes (RAY_AUTH_MODE=disabled)" in p for p in problems)
    assert any(
        "the token file is not mounted: file_mounts has no `~/.ray/auth_token`" in p
        for p in problems
    )


def test_public_dashboard_is_named():
    data = broken(
        head_start_ray_commands=[
            c.replace("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0")
            for c in SHIPPED["head_start_ray_commands"]
        ]
    )
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert problem.startswith("c.yaml: head_start_ray_commands binds to 0.0.0.0, which is public")
    assert "--dashboard-host=127.0.0.1" in problem and "ray dashboard c.yaml" in problem


def test_rays_default_start_commands_are_caught():
    # Without head_start_ray_commands, Ray's AWS defaults start the dashboard on 0.0.0.0.
    problems = validate_cluster_config(broken(head_start_ray_commands=None), "c.yaml").problems
    assert len(problems) == 1
    assert problems[0].startswith(
        "c.yaml: head_start_ray_commands (Ray's default, since c.yaml sets none) binds to 0.0.0.0"
    )
    # ... and without auth, unless the setup commands export RAY_AUTH_MODE=token (the shipped file does).
    setup = [c for c in SHIPPED["setup_commands"] if "RAY_AUTH_MODE" not in c]
    problems = validate_cluster_config(
        broken(head_start_ray_commands=None, setup_commands=setup), "c.yaml"
    ).problems
    assert any(
        "token auth is off on the head nodes: head_start_ray_commands (Ray's default" in p
        for p in problems
    )


def test_unknown_key_is_named_with_a_suggestion():
    data = broken()
    data["available_node_types"]["gpu_a10g"]["min_worker"] = 1
    data["idle_timeout_minute"] = 5
    problems = validate_cluster_config(data, "c.yaml").problems
    assert problems == [
        "c.yaml: unknown key `idle_timeout_minute` (Ray's cluster schema). Did you mean `idle_timeout_minutes`?",
        "c.yaml: unknown key `available_node_types.gpu_a10g.min_worker` (Ray's cluster schema). Did you mean `min_workers`?",
    ]


def test_wrong_type_and_rays_own_cross_checks_are_reported():
    data = broken(max_workers="ten")
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert problem == "c.yaml: `max_workers`: 'ten' is not of type 'integer' (Ray's cluster schema)"
    data = broken(head_node_type="boss")
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert "`head_node_type` must be one of `available_node_types`" in problem


def test_no_gpu_type_is_named():
    data = broken()
    for name in ("gpu_a10g", "gpu_a10g_x4"):
        del data["available_node_types"][name]
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert problem.startswith("c.yaml: no GPU worker type:")
    data = broken()
    for name in ("gpu_a10g", "gpu_a10g_x4"):
        data["available_node_types"][name]["max_workers"] = 0
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert "have max_workers 0" in problem


def test_literal_token_in_commands_is_refused():
    data = broken()
    data["setup_commands"] = [*SHIPPED["setup_commands"], "export RAY_AUTH_TOKEN=abc123"]
    (problem,) = validate_cluster_config(data, "c.yaml").problems
    assert "sets RAY_AUTH_TOKEN=..." in problem and "mount the token file" in problem


@pytest.mark.parametrize(
    ("variant", "needle"),
    [
        ("no_auth", "token auth is off"),
        ("public", "binds to 0.0.0.0"),
        ("unknown_key", "unknown key `available_node_types.head.resource`"),
        ("no_gpu", "no GPU worker type"),
    ],
)
def test_cli_exits_1_and_names_each_problem(tmp_path, capsys, variant, needle):
    data = broken()
    if variant == "no_auth":
        data["head_start_ray_commands"] = strip_auth(data["head_start_ray_commands"])
        data["setup_commands"] = [c for c in data["setup_commands"] if "RAY_AUTH_MODE" not in c]
    elif variant == "public":
        data["head_start_ray_commands"][1] += " --dashboard-host=0.0.0.0"
    elif variant == "unknown_key":
        data["available_node_types"]["head"]["resource"] = {"CPU": 4}
    else:
        data["available_node_types"] = {"head": data["available_node_types"]["head"]}
        data["max_workers"] = 0
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["cluster", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert needle in err, err
    assert err.strip().endswith("problem") or err.strip().endswith("problems")


def test_validate_missing_file_and_bad_yaml(tmp_path, capsys):
    assert main(["cluster", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cluster config not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: a\nprovider: [\n")
    with pytest.raises(ClusterError, match=r"bad.yaml: YAML syntax error at line 3"):
        validate_cluster_file(bad)


# --- token and address discovery ------------------------------------------------------------


def test_token_discovery_order(tmp_path, monkeypatch):
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    token, source = discover_token()
    assert token is None and "none set" in source
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert discover_token() == ("from-home", "~/.ray/auth_token")
    (tmp_path / "tok").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert discover_token() == ("from-path", f"RAY_AUTH_TOKEN_PATH={tmp_path / 'tok'}")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert discover_token() == ("from-env", "RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match=r"RAY_AUTH_TOKEN_PATH=.*missing does not exist"):
        discover_token()


def test_token_discovery_reads_the_environment_it_is_given(tmp_path):
    (tmp_path / "tok").write_text("from-path\n")
    env = {"HOME": str(tmp_path), "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}
    assert discover_token(env) == ("from-path", f"RAY_AUTH_TOKEN_PATH={tmp_path / 'tok'}")
    assert discover_token({"HOME": str(tmp_path)})[0] is None


def test_auth_headers_and_ray_auth_env_change_no_environment(tmp_path):
    home = {"HOME": str(tmp_path)}
    before = dict(os.environ)
    assert auth_headers(home) == ({}, discover_token(home)[1])
    assert ray_auth_env(home) == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("secret")
    assert auth_headers(home) == ({"Authorization": "Bearer secret"}, "~/.ray/auth_token")
    assert ray_auth_env(home) == {"RAY_AUTH_MODE": "token"}
    # A mode the user chose is kept: no header and nothing added when auth is disabled.
    disabled = {**home, "RAY_AUTH_MODE": "disabled"}
    assert auth_headers(disabled)[0] == {} and ray_auth_env(disabled) == {}
    assert ray_auth_env({**home, "RAY_AUTH_MODE": "token"}) == {}
    assert ray_auth_env({"HOME": str(tmp_path / "none"), "RAY_AUTH_TOKEN": "t"}) == {
        "RAY_AUTH_MODE": "token"
    }
    assert dict(os.environ) == before


def test_unreachable_reason():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert unreachable_reason("127.0.0.1", port, 2.0) is None
    assert unreachable_reason("127.0.0.1", port, 2.0) == "Connection refused"


def test_address_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("LMRL_HOME", str(tmp_path))
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_address() == ("http://127.0.0.1:8265", "the default")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:8265")
    assert resolve_address() == ("http://10.0.0.5:8265", "RAY_ADDRESS")
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "https://ray.example:443/")
    assert resolve_address() == ("https://ray.example:443", "RAY_API_SERVER_ADDRESS")
    assert resolve_address("127.0.0.1:9999") == ("http://127.0.0.1:9999", "--address")


def test_no_cluster_at_the_address_fails_fast(tmp_path, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LMRL_HOME", str(tmp_path))
    with pytest.raises(
        ClusterError,
        match=rf"no Ray cluster answers at http://127.0.0.1:{port} \(from --address\): Connection refused; start a local head with `lmrl cluster up --local`",
    ):
        JobsClient(f"127.0.0.1:{port}")
    assert main(["jobs", "list", "--address", f"http://127.0.0.1:{port}"]) == 2
    assert "no Ray cluster answers" in capsys.readouterr().err


# --- preparing a submission -----------------------------------------------------------------

TINY = ["algorithm.train_batch_size=64", "algorithm.minibatch_size=32", "algorithm.num_epochs=1"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "maze.yaml").write_text(
        "env:\n  id: lmrl/Maze-v0\nrun:\n  stop:\n    iterations: 1\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_submission_entrypoint_env_metadata_and_resources(workdir):
    sub = prepare_submission(
        "train", "configs/maze.yaml", TINY + ["resources.num_env_runners=2"],
        storage="/shared/runs", submission_id="job-1", env_vars=["HF_HUB_OFFLINE=1"],
    )  # fmt: skip
    assert shlex.split(sub.entrypoint) == [
        "lmrl", "train", "configs/maze.yaml",
        *[w for s in TINY for w in ("--set", s)],
        "--set", "resources.num_env_runners=2",
        "--set", "run.output_dir=/shared/runs", "--set", "run.name=job-1",
    ]  # fmt: skip
    assert sub.runtime_env["working_dir"] == str(workdir)
    assert sub.runtime_env["excludes"] == WORKING_DIR_EXCLUDES
    assert {".venv", "runs", ".git", "__pycache__"} <= set(sub.runtime_env["excludes"])
    assert sub.runtime_env["env_vars"] == {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    assert (
        sub.metadata["lmrl_pipeline"] == "train"
        and sub.metadata["lmrl_run_dir"] == "/shared/runs/job-1"
    )
    assert sub.run_dir == "/shared/runs/job-1" and not sub.relative_output_dir
    assert (sub.entrypoint_num_cpus, sub.entrypoint_num_gpus) == (1.0, 0.0)
    assert sub.request.totals == {"CPU": 3.0}  # the driver + 2 env runners


def test_gpu_learners_and_driver_gpu_are_counted(workdir):
    sub = prepare_submission(
        "train",
        "configs/maze.yaml",
        ["resources.num_learners=4", "resources.num_gpus_per_learner=1"],
    )
    assert sub.entrypoint_num_gpus == 0.0  # the learners hold the GPUs, not the driver
    assert sub.request.totals == {"CPU": 2.0, "GPU": 4.0}
    assert sub.request.why["GPU"] == "resources.num_learners (4) x num_gpus_per_learner (1)"
    sub = prepare_submission("train", "configs/maze.yaml", ["resources.num_gpus_per_learner=1"])
    assert sub.entrypoint_num_gpus == 1.0  # num_learners 0: the driver learns, on its GPU
    assert sub.request.totals == {"CPU": 2.0, "GPU": 1.0}


def test_relative_output_dir_is_pinned_for_a_cluster_on_this_machine(workdir):
    sub = prepare_submission("train", "configs/maze.yaml", submission_id="job-2")
    assert sub.relative_output_dir and sub.run_dir == "runs/job-2"
    sub.pin_output_dir(workdir)
    assert sub.run_dir == str(workdir / "runs" / "job-2")
    assert shlex.split(sub.entrypoint)[-2:] == ["--set", f"run.output_dir={workdir / 'runs'}"]


def test_other_pipelines_pass_their_arguments(workdir):
    sub = prepare_submission(
        "data-collect", "lmrl/Maze-v0", extra_args=["--policy", "expert", "-n", "5"], num_gpus=0.5
    )
    assert shlex.split(sub.entrypoint) == [
        "lmrl",
        "data",
        "collect",
        "lmrl/Maze-v0",
        "--policy",
        "expert",
        "-n",
        "5",
    ]
    assert sub.request.totals == {"CPU": 1.0, "GPU": 0.5} and sub.run_dir is None
    sub = prepare_submission("eval", "/shared/runs/job-1", extra_args=["-n", "50"])
    assert sub.entrypoint == "lmrl eval /shared/runs/job-1 -n 50"
    with pytest.raises(ClusterError, match=r"--set does not apply to `lmrl eval`"):
        prepare_submission("eval", "/x", ["a.b=1"])
    with pytest.raises(ClusterError, match=r"unknown pipeline 'trian'.*Did you mean `train`\?"):
        prepare_submission("trian", "configs/maze.yaml")


def test_submission_errors_are_clear(workdir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "c.yaml"
    outside.write_text("{}\n")
    with pytest.raises(
        ClusterError, match=r"is outside the working directory .* pass --working-dir"
    ):
        prepare_submission("train", str(outside))
    with pytest.raises(ClusterError, match=r"config file not found: nope.yaml"):
        prepare_submission("train", "nope.yaml")
    (workdir / "runs").mkdir()
    (workdir / "runs" / "c.yaml").write_text("{}\n")
    with pytest.raises(ClusterError, match=r"lies in runs/, which is not uploaded"):
        prepare_submission("train", "runs/c.yaml")
    with pytest.raises(ConfigError, match=r"unknown key `algorithm.lrr` in --set algorithm.lrr=1"):
        prepare_submission("train", "configs/maze.yaml", ["algorithm.lrr=1"])
    with pytest.raises(ClusterError, match=r"--env expects KEY=VALUE, got 'X'"):
        prepare_submission("train", "configs/maze.yaml", env_vars=["X"])


def test_submit_dry_run_and_pass_through_arguments(workdir, capsys):
    assert (
        main(
            [
                "submit",
                "configs/maze.yaml",
                "--dry-run",
                "--set",
                "run.name=r1",
                "--submission-id",
                "s1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "dry run: job s1 (not submitted)" in out
    assert "entrypoint:  lmrl train configs/maze.yaml --set run.name=r1" in out
    args = build_parser().parse_args(
        ["submit", "--pipeline", "eval", "runs/x", "--wait", "--", "-n", "200", "--seed", "3"]
    )
    assert (args.target, args.extra, args.wait) == ("runs/x", ["-n", "200", "--seed", "3"], True)


def test_cluster_up_needs_local(capsys):
    assert main(["cluster", "up"]) == 2
    assert "needs --local" in capsys.readouterr().err


def test_readme_and_docs_cluster_examples_parse():
    parser = build_parser()
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "cluster.md").read_text()
    lines = [
        line.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S) for line in block.splitlines()
        if line.strip().startswith(("lmrl submit", "lmrl jobs", "lmrl cluster"))
    ]  # fmt: skip
    assert len(lines) >= 8
    for line in lines:
        command = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0])
        args = parser.parse_args(shlex.split(command)[1:])
        assert callable(args.func), line


def test_building_the_cluster_commands_does_not_import_ray():
    code = (
        "import sys; from lmrl.platform.cli import build_parser; build_parser(); print('ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_train_workers_of_a_pretrain_config_are_counted(workdir):
    (workdir / "pt.yaml").write_text(
        "resources:\n  num_workers: 4\n  use_gpu: true\n  cpus_per_worker: 8\n"
    )
    sub = prepare_submission("pretrain", "pt.yaml", ["run.name=pt"], storage="/shared/runs")
    assert (
        sub.entrypoint
        == "lmrl pretrain pt.yaml --set run.name=pt --set run.output_dir=/shared/runs"
    )
    assert sub.run_dir == "/shared/runs/pt"
    assert sub.request.totals == {"CPU": 33.0, "GPU": 4.0}
    assert sub.request.why["GPU"] == "resources.num_workers (4) x 1 (resources.use_gpu true)"


def test_k8s_rayjob_runs_the_same_workload_with_token_auth():
    docs = list(yaml.safe_load_all((ROOT / "k8s" / "rayjob-train.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    job = by_kind["RayJob"]["spec"]
    assert job["entrypoint"].startswith("lmrl train /etc/lmrl/train.yaml")
    cluster = job["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"} and cluster["rayVersion"] == "2.60.0"
    gpu_groups = [
        g for g in cluster["workerGroupSpecs"]
        if g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
    ]  # fmt: skip
    assert gpu_groups, "a GPU worker group"
    from lmrl.pipelines.config import RunConfig

    train = RunConfig.model_validate(yaml.safe_load(by_kind["ConfigMap"]["data"]["train.yaml"]))
    assert train.resources.num_learners * train.resources.num_gpus_per_learner <= sum(
        g["replicas"] for g in gpu_groups
    )
    assert train.run.output_dir == "/mnt/runs"
    assert by_kind["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_init_ray_joins_the_cluster_named_by_ray_address(tmp_path):
    """A job's driver has RAY_ADDRESS set: `lmrl train` must join that cluster, not start a Ray of its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = (
        "from lmrl.errors import LmrlError\nfrom lmrl.runtime import init_ray\n"
        "try:\n    init_ray(None, num_cpus=2)\nexcept LmrlError as exc:\n    print('ERR', exc)\n"
        "import ray\nprint('LOCAL', ray.is_initialized())\n"
    )
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    ).stdout
    assert f"ERR cannot connect to Ray at '127.0.0.1:{port}': nothing answers" in out
    assert "LOCAL False" in out
