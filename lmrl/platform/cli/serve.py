"""``lmrl serve`` and ``lmrl chat``: the command-line side of serving.

Example:
    $ lmrl serve runs/customer-support-choose --port 8000
    $ lmrl serve runs/customer-support-choose --replicas 2 --max-replicas 4 --print-config > serve.yaml
    $ lmrl chat http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from lmrl.errors import ConfigError
from lmrl.platform.cli.args import port, positive_int


def add_commands(commands: Any) -> None:
    """Adds ``serve`` and ``chat`` to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    serve = commands.add_parser(
        "serve",
        help="serve a trained policy over HTTP with an OpenAI-compatible API (Ray Serve)",
        description="Deploys an exported policy on Ray Serve: POST /v1/chat/completions, /v1/completions, "
        "/v1/act; GET /v1/models, /healthz. A key is required (Authorization: Bearer KEY): from "
        "--api-key-file, else LMRL_API_KEY, else a new one printed once. See docs/serving.md.",
        epilog="examples:\n  lmrl serve runs/customer-support-choose\n"
        "  LMRL_API_KEY=... lmrl serve runs/cs/export --replicas 2 --port 9000\n"
        "  lmrl serve runs/cs --max-replicas 4 --print-config > serve.yaml && serve deploy serve.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("path", metavar="PATH", help="a run directory or an exported policy directory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=port, default=8000, help="HTTP port (default: 8000)")
    serve.add_argument("--model-name", metavar="NAME", help="model id clients send (default: the run's name)")
    serve.add_argument("--replicas", type=positive_int, default=1, metavar="N", help="policy replicas (default: 1)")
    serve.add_argument(
        "--max-replicas", type=positive_int, metavar="M", help="autoscale between --replicas and M replicas"
    )
    serve.add_argument("--num-cpus", type=float, default=1.0, metavar="C", help="CPUs per policy replica (default: 1)")
    serve.add_argument("--api-key-file", metavar="FILE", help="file holding the API key (default: $LMRL_API_KEY)")
    serve.add_argument(
        "--no-auth", action="store_true", help="serve without an API key (anyone who reaches the port can call it)"
    )
    serve.add_argument(
        "--max-ongoing-requests", type=positive_int, default=32, metavar="N",
        help="requests one replica works on at once (default: 32)",
    )
    serve.add_argument(
        "--max-queued-requests", type=int, default=64, metavar="N",
        help="requests waiting beyond those; more get 503 with Retry-After (default: 64; -1: no limit)",
    )
    serve.add_argument(
        "--request-timeout-s", type=float, default=30.0, metavar="S", help="requests slower than this get 408 (default: 30)"
    )
    serve.add_argument(
        "--max-batch-size", type=positive_int, default=16, metavar="N", help="completions per batched pass (default: 16)"
    )
    serve.add_argument(
        "--batch-wait-timeout-s", type=float, default=0.005, metavar="S",
        help="how long to wait to fill a batch (default: 0.005)",
    )
    serve.add_argument(
        "--max-tokens-limit", type=positive_int, default=128, metavar="N", help="largest max_tokens (default: 128)"
    )
    serve.add_argument("--max-n", type=positive_int, default=8, metavar="N", help="largest n (default: 8)")
    serve.add_argument("--address", metavar="ADDR", help="Ray cluster address (default: start a local Ray)")
    serve.add_argument(
        "--metrics-port", type=port, default=8080, metavar="PORT",
        help="Prometheus metrics port of a local Ray (default: 8080)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (Serve's access log)")
    serve.add_argument(
        "--print-config", action="store_true",
        help="print a Ray Serve config YAML for `serve deploy` instead of serving",
    )
    serve.set_defaults(func=_cmd_serve)

    chat = commands.add_parser(
        "chat",
        help="talk to a served dialogue policy in the terminal",
        description="A terminal chat with a policy served by `lmrl serve`. The key comes from --api-key-file "
        "or LMRL_API_KEY. /reset starts over, /quit or Ctrl-D leaves; piped input works too.",
    )
    chat.add_argument("url", metavar="URL", help="the server, e.g. http://127.0.0.1:8000")
    chat.add_argument("--api-key-file", metavar="FILE", help="file holding the API key (default: $LMRL_API_KEY)")
    chat.add_argument("--model", metavar="NAME", help="model id (default: the server's)")
    chat.add_argument("--temperature", type=float, metavar="T", help="0 for greedy (default: the policy's)")
    chat.add_argument("--max-tokens", type=positive_int, metavar="N", help="token limit of a reply")
    chat.set_defaults(func=_cmd_chat)


def serve_config_from_args(args: argparse.Namespace, policy_dir: Path, key: str | None) -> Any:
    """The :class:`ServeConfig` the ``lmrl serve`` options describe (one-line errors)."""
    from pydantic import ValidationError

    from lmrl.platform.serve.auth import key_digest
    from lmrl.platform.serve.config import ServeConfig

    try:
        return ServeConfig(
            policy=str(policy_dir.resolve()),
            model_name=args.model_name,
            replicas=args.replicas,
            max_replicas=args.max_replicas,
            num_cpus=args.num_cpus,
            max_ongoing_requests=args.max_ongoing_requests,
            max_queued_requests=args.max_queued_requests,
            request_timeout_s=args.request_timeout_s,
            max_batch_size=args.max_batch_size,
            batch_wait_timeout_s=args.batch_wait_timeout_s,
            max_tokens_limit=args.max_tokens_limit,
            max_n=args.max_n,
            auth=key is not None,
            api_key_sha256=key_digest(key) if key is not None else None,
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        message = err["msg"].removeprefix("Value error, ")
        if err["loc"]:  # one option's value
            raise ConfigError(f"{_flag(str(err['loc'][0]))}: {message}, got {err['input']!r}") from None
        # A cross-option check names the fields: name the options instead.
        names = sorted(ServeConfig.model_fields, key=len, reverse=True)
        message = re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: _flag(m.group(1)), message)
        raise ConfigError(message) from None


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _cmd_serve(args: argparse.Namespace) -> int:
    from lmrl.pipelines.evaluate import resolve_policy_dir
    from lmrl.platform.serve.auth import API_KEY_ENV, resolve_api_key

    policy_dir = resolve_policy_dir(args.path)
    if args.no_auth and args.api_key_file:
        raise ConfigError("--no-auth and --api-key-file contradict each other; pass one of them")
    key, generated, source = None, False, "none (--no-auth)"
    if not args.no_auth:
        key, generated = resolve_api_key(args.api_key_file)
        source = f"--api-key-file {args.api_key_file}" if args.api_key_file else (
            "generated (printed above)" if generated else f"${API_KEY_ENV}"
        )
    config = serve_config_from_args(args, policy_dir, key)
    if generated:
        print(
            f"API key (shown once; clients send `Authorization: Bearer <key>`): {key}\n"
            f"to keep it, save it and pass --api-key-file FILE or set {API_KEY_ENV} next time",
            file=sys.stderr,
        )
    if args.no_auth:
        print("warning: --no-auth: anyone who can reach the port can use the policy", file=sys.stderr)
    if args.print_config:
        from lmrl.platform.serve.config import serve_config_yaml

        sys.stdout.write(serve_config_yaml(config, args.host, args.port))
        return 0
    return _run_server(args, config, source)


def _run_server(args: argparse.Namespace, config: Any, key_source: str) -> int:
    from lmrl.platform.serve import launch
    from lmrl.policies.text_policy import read_meta
    from lmrl.runtime import init_ray

    joining = args.address is not None or bool(os.environ.get("RAY_ADDRESS"))
    if not joining:  # a cluster's Serve may already hold the port; a local one must find it free
        launch.check_port_free(args.host, args.port)
    meta = read_meta(config.policy)
    print(f"starting Ray Serve for {config.policy} ...", file=sys.stderr, flush=True)
    init_ray(args.address, metrics_port=None if joining else args.metrics_port)
    from ray import serve

    try:
        url = launch.deploy(config, args.host, args.port, access_log=args.access_log)
        from lmrl.platform.serve.app import default_model_name

        name = config.model_name or default_model_name(config.policy)
        print(
            f"serving `{name}` ({meta.get('env_id')}, {meta.get('action_mode')} mode, {config.replicas} "
            f"replica{'s' if config.replicas > 1 else ''}) at {url}/v1\n"
            f"  API key: {key_source}\n"
            f"  try:     curl -H \"Authorization: Bearer $LMRL_API_KEY\" {url}/v1/models\n"
            f"  chat:    lmrl chat {url}\n"
            f"  health:  {url}/healthz\n"
            f"  metrics: {launch.metrics_url() or 'the Ray node metrics endpoint'} (Prometheus)\n"
            "Ctrl-C stops the server.",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping ...", file=sys.stderr)
        return 0
    finally:
        serve.shutdown()
        from lmrl.runtime import shutdown_ray

        shutdown_ray()


def _cmd_chat(args: argparse.Namespace) -> int:
    from lmrl.platform.serve.auth import API_KEY_ENV, read_key_file
    from lmrl.platform.serve.client import ChatClient, chat_loop

    key = read_key_file(args.api_key_file) if args.api_key_file else (os.environ.get(API_KEY_ENV) or None)
    return chat_loop(ChatClient(args.url, key), args.model, args.temperature, args.max_tokens)
