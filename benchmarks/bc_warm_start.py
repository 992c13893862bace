"""Behaviour cloning pays off: PPO from an SFT'd policy vs PPO from scratch on lmrl/Maze-v0.

Both arms use the quickstart PPO config; each stops when the training
success rate (sampled actions, the last 100 episodes) reaches ``--target``,
or after ``--max-iterations``. The warm arm first runs the quickstart's
warm-start stage (200 expert episodes -> SFT on Ray Train, 2 workers), and
its environment steps count only PPO's (the demos are another 1.2k expert
steps, reported separately). Results go to ``OUT/bc_warm_start.json``.

    python benchmarks/bc_warm_start.py --out runs/bench-bc --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _steps_to(rows: list[dict], target: float) -> int | None:
    for row in rows:
        if (row.get("success_rate") or 0.0) >= target:
            return int(row["timesteps"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/bench-bc")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--max-iterations", type=int, default=60)
    parser.add_argument("--arms", nargs="+", default=["warm", "scratch"])
    args = parser.parse_args()

    import ray

    from lmrl.pipelines.evaluate import evaluate
    from lmrl.pipelines.quickstart import quickstart_config, warm_start
    from lmrl.pipelines.rl.loop import train
    from lmrl.pipelines.run_dir import read_rows

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = Path(args.out)
    results = []
    for seed in args.seeds:
        for arm in args.arms:
            started = time.perf_counter()
            over = {
                "run": {
                    "seed": seed,
                    "name": f"{arm}-seed{seed}",
                    "stop": {"iterations": args.max_iterations, "time_s": None, "success_rate": args.target},
                    "progress": False,
                },
                "policy": {"init_seed": seed},
            }
            cfg = quickstart_config(str(out), over)
            row = {"arm": arm, "seed": seed}
            if arm == "warm":
                info = warm_start(out / f"warm-seed{seed}", cfg)
                sft = evaluate(info["model_dir"], cfg.env.id, n=100, seed=10_000, out_dir=str(Path(info["sft_run"]) / "eval"))
                row.update(
                    sft_seconds=info["seconds"],
                    demo_episodes=info["demo_episodes"],
                    sft_steps=info["sft_steps"],
                    sft_eval=info["sft_eval"],
                    sft_greedy_success=sft["greedy_success_rate"],
                    sft_sampled_success=sft["sampled_success_rate"],
                    random_success=sft["random_success_rate"],
                )
                raw = cfg.model_dump(mode="json", by_alias=True)
                raw["policy"]["model"] = info["model_dir"]
                cfg = type(cfg).model_validate(raw)
            run = train(cfg)
            rows = read_rows(run / "metrics.jsonl")
            final = evaluate(str(run), n=100, seed=10_000, out_dir=str(run / "eval"))
            row.update(
                env_steps_to_target=_steps_to(rows, args.target),
                iterations=len(rows),
                env_steps=rows[-1]["timesteps"],
                final_training_success=rows[-1].get("success_rate"),
                greedy_success_after_ppo=final["greedy_success_rate"],
                wall_seconds=round(time.perf_counter() - started, 1),
                curve=[(r["timesteps"], r.get("success_rate")) for r in rows],
            )
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            (out / "bc_warm_start.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
