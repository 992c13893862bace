"""Start-up: a training run's time to its first update, lmrl's Ray start against Ray's defaults.

Each trial is a fresh Python process (a cold Ray and cold imports) that
validates the run config, starts a local Ray, builds the RLlib algorithm
(importing RLlib) and runs ``algo.train()`` until the first update is done.
The two sides differ only in how Ray starts:

* baseline: ``ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)``
  (what lmrl did until 2026-11-29), then RLlib's import;
* lmrl: :func:`lmrl.runtime.init_ray` with ``preload=RL_MODULES``
  (RLlib and torch's compiler stack imported in a thread while Ray starts;
  no idle workers forked up front).

The run is the TRL comparison's (``lmrl/Arithmetic-v0`` level 1, generate
mode, GRPO groups, tiny GPT-2), where start-up was the gap. torch and
transformers are imported before the clock starts on both sides. The sides
take turns, so drift on a shared machine hits both.

    python benchmarks/startup.py            # 5 trials per side
    python benchmarks/startup.py --quick    # 1 trial per side
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SIDES = ("baseline", "lmrl")


def child(side: str, model_dir: str, work: str) -> dict[str, float]:
    """One trial in this (fresh) process: seconds to Ray up, algorithm built, first update done."""
    import time

    import torch
    import transformers  # noqa: F401 - imported before the clock on both sides
    import trl_compare

    torch.set_num_threads(1)
    from lmrl.pipelines.rl.loop import _quiet_rllib

    t0 = time.perf_counter()
    cfg = trl_compare.lmrl_config(model_dir, Path(work))
    if side == "baseline":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    else:
        from lmrl.pipelines.rl.loop import RL_MODULES
        from lmrl.runtime import init_ray

        init_ray(num_cpus=2, log_to_driver=False, preload=RL_MODULES)
    from lmrl.pipelines.rl.builder import build_algorithm_config

    t_ray = time.perf_counter()
    _quiet_rllib()
    algo = build_algorithm_config(cfg, model_dir).build_algo()
    t_built = time.perf_counter()
    algo.train()
    t_update = time.perf_counter()
    algo.stop()
    return {
        "ray_and_imports_s": round(t_ray - t0, 3),
        "build_s": round(t_built - t_ray, 3),
        "first_iteration_s": round(t_update - t_built, 3),
        "to_first_update_s": round(t_update - t0, 3),
    }


def trial(side: str, model_dir: str, work: Path) -> dict[str, float]:
    """Runs :func:`child` in a fresh interpreter and returns its timings."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", side, "--model", model_dir, "--work", str(work)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"startup trial ({side}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    p = common.parser("startup", __doc__)
    p.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--trials", type=int, default=None, help="trials per side (default: 5; quick: 1)")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.model, args.work)))
        return 0
    started = common.setup(args)
    trials = args.trials or (1 if args.quick else 5)
    model_dir = common.tiny_model(args.work, "tiny")
    work = Path(args.work) / "startup"
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for _ in range(trials):
        for side in SIDES:  # taking turns
            runs[side].append(trial(side, model_dir, work))
    keys = ("ray_and_imports_s", "build_s", "first_iteration_s", "to_first_update_s")
    med: dict[str, dict[str, Any]] = {
        side: {k: round(statistics.median(r[k] for r in runs[side]), 3) for k in keys} for side in SIDES
    }
    for side in SIDES:
        med[side]["trials"] = runs[side]
    rows = [
        [label, *(med[side][k] for k in keys)]
        for label, side in (("ray.init defaults (lmrl before)", "baseline"), ("lmrl init_ray (preload, no idle workers)", "lmrl"))
    ]
    common.report(
        "startup",
        args,
        title=f"Time to the first update of a training run, fresh process, median of {trials} trials per side",
        columns=["side", "Ray + imports s", "build s", "first iteration s", "to first update s"],
        rows=rows,
        lmrl=med["lmrl"],
        baseline=med["baseline"],
        ratio_value=common.ratio(med["baseline"]["to_first_update_s"], med["lmrl"]["to_first_update_s"]),
        ratio_meaning="baseline seconds to the first update / lmrl seconds (> 1: lmrl starts faster)",
        extra={"trials": trials, "run": "trl_compare's lmrl side (Arithmetic level 1, generate, grpo)"},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
