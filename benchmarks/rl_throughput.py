"""RL throughput: lmrl's PPO on RLlib against a bare single-process PPO loop on the same module.

The lmrl side is what ``lmrl train`` runs (:func:`lmrl.pipelines.rl.builder.build_algorithm_config`,
the quickstart's settings: Maze in choose mode, sampling in the driver, 16 envs):
env steps/s and learner samples/s per iteration, and each iteration's time
split into sampling, learning and everything else (RLlib's own timers).

The baseline is the same computation with nothing around it, CleanRL-style:
the same ``LMPolicyModule`` and the same tokenized envs in a Python list,
one batched ``forward_exploration`` per step, GAE, then the same number of
epochs and minibatches of the clipped PPO loss with the same optimiser. The
ratio is lmrl env steps/s over the bare loop's: what the platform costs.

    python benchmarks/rl_throughput.py            # full
    python benchmarks/rl_throughput.py --quick    # seconds
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def run_config(model_dir: str, out: str, quick: bool, env_id: str, mode: str):
    from lmrl.pipelines.config import RunConfig

    batch, minibatch, epochs, envs = (64, 32, 1, 4) if quick else (512, 128, 4, 16)
    return RunConfig.model_validate({
        "env": {"id": env_id},
        "policy": {"model": model_dir, "action_mode": mode},
        "algorithm": {"lr": 1e-3, "train_batch_size": batch, "minibatch_size": minibatch, "num_epochs": epochs},
        "resources": {"num_env_runners": 0, "num_envs_per_env_runner": envs, "num_cpus": 2},
        "run": {"output_dir": out, "seed": 0, "progress": False, "eval_episodes": 0},
    })  # fmt: skip


def _timer(timers: dict[str, Any], *names: str) -> float:
    for name in names:
        if name in timers:
            return float(timers[name])
    return 0.0


class _Stopwatch:
    """Wraps a bound method on its instance and adds up the seconds spent in it."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(owner, name, timed)

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def lmrl_side(cfg, model_dir: str):
    """An RLlib PPO algorithm as lmrl builds it; returns ``(one_iteration, stop)``.

    RLlib's own timers are smoothed over iterations, so the sampling and
    learning time of each iteration is measured around the local env runner's
    ``sample`` and the learner group's ``update`` instead; the rest of the
    iteration (connectors, GAE, metrics, weight sync) is "other".
    """
    import ray

    from lmrl.pipelines.rl.builder import build_algorithm_config
    from lmrl.pipelines.rl.loop import _quiet_rllib

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    _quiet_rllib()
    algo = build_algorithm_config(cfg, model_dir).build_algo()
    sampling = _Stopwatch(algo.env_runner_group.local_env_runner, "sample")
    learning = _Stopwatch(algo.learner_group, "update")

    def one_iteration() -> dict[str, float]:
        start = time.perf_counter()
        result = algo.train()
        wall = time.perf_counter() - start
        steps = int(
            result["env_runners"].get("num_env_steps_sampled", cfg.algorithm.train_batch_size)
        )
        return {
            "wall": wall,
            "steps": steps,
            "sampling": sampling.take(),
            "learning": learning.take(),
        }

    return one_iteration, algo.stop


def bare_side(cfg, model_dir: str):
    """The same PPO with no framework (a module, a list of envs, a loop); returns ``one_iteration``."""
    import numpy as np
    import torch

    from lmrl.pipelines.rl.builder import RLlibTextEnv, env_config, module_spec

    torch.manual_seed(cfg.run.seed)
    a, n_envs = cfg.algorithm, cfg.resources.num_envs_per_env_runner
    env_cfg = env_config(cfg, model_dir)
    envs = [RLlibTextEnv(env_cfg) for _ in range(n_envs)]
    module = module_spec(cfg, model_dir, envs[0].observation_space, envs[0].action_space).build()
    dist_cls = module.get_train_action_dist_cls()
    opt = torch.optim.Adam(module.parameters(), lr=a.lr)
    obs = [env.reset(seed=cfg.run.seed + i)[0] for i, env in enumerate(envs)]
    seeds = iter(range(cfg.run.seed + n_envs, 10**9))

    def stack(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.stack([o[k] for o in items])) for k in items[0]}

    def one_iteration() -> dict[str, float]:
        t0 = time.perf_counter()
        steps: list[dict[str, Any]] = []
        while len(steps) * n_envs < a.train_batch_size:
            batch = stack(obs)
            out = module.forward_exploration({"obs": batch})
            actions, logp = out["actions"], out["action_logp"]
            rewards, dones = [], []
            for i, env in enumerate(envs):
                o, r, term, trunc, _ = env.step(actions[i].numpy())
                if term or trunc:
                    o = env.reset(seed=next(seeds))[0]
                obs[i] = o
                rewards.append(r)
                dones.append(term or trunc)
            steps.append({"obs": batch, "actions": actions, "logp": logp,
                          "reward": torch.tensor(rewards, dtype=torch.float32),
                          "done": torch.tensor(dones, dtype=torch.float32)})  # fmt: skip
        t1 = time.perf_counter()
        flat_obs = {
            k: torch.cat([s["obs"][k] for s in steps]) for k in steps[0]["obs"]
        }  # (T*N, ...)
        actions = torch.cat([s["actions"] for s in steps])
        old_logp = torch.cat([s["logp"] for s in steps])
        with torch.no_grad():
            values = module.compute_values({"obs": flat_obs}).view(len(steps), n_envs)  # (T, N)
            last = module.compute_values({"obs": stack(obs)})  # (N,)
        # GAE (Schulman et al. 2016, https://arxiv.org/abs/1506.02438), as CleanRL's ppo.py.
        adv = torch.zeros(len(steps), n_envs)
        running = torch.zeros(n_envs)
        for t in reversed(range(len(steps))):
            nxt = last if t + 1 == len(steps) else values[t + 1]
            live = 1.0 - steps[t]["done"]
            delta = steps[t]["reward"] + a.gamma * nxt * live - values[t]
            running = delta + a.gamma * a.lambda_ * live * running
            adv[t] = running
        returns = (adv + values).flatten()
        adv = adv.flatten()
        n = len(adv)
        for _ in range(a.num_epochs):
            for idx in torch.randperm(n).split(a.minibatch_size):
                mb = {"obs": {k: v[idx] for k, v in flat_obs.items()}, "actions": actions[idx]}
                fwd = module.forward_train(mb)
                dist = dist_cls.from_logits(fwd["action_dist_inputs"])
                logp, entropy = dist.logp(actions[idx]), dist.entropy().mean()
                v = module.compute_values(mb, embeddings=fwd["embeddings"])
                mb_adv = (adv[idx] - adv[idx].mean()) / (adv[idx].std() + 1e-8)
                ratio = torch.exp(logp - old_logp[idx])
                pg = -torch.min(
                    mb_adv * ratio, mb_adv * ratio.clamp(1 - a.clip_param, 1 + a.clip_param)
                ).mean()
                vf = (v - returns[idx]).pow(2).clamp(max=a.vf_clip_param).mean()
                loss = pg + a.vf_loss_coeff * vf - a.entropy_coeff * entropy
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), a.grad_clip)
                opt.step()
        t2 = time.perf_counter()
        return {
            "wall": t2 - t0,
            "steps": len(steps) * n_envs,
            "sampling": t1 - t0,
            "learning": t2 - t1,
        }

    return one_iteration


def _summarise(rows: list[dict[str, float]], cfg) -> dict[str, Any]:
    wall = statistics.median(r["wall"] for r in rows)
    steps = statistics.median(r["steps"] for r in rows)
    sampling = statistics.median(r["sampling"] for r in rows)
    learning = statistics.median(r["learning"] for r in rows)
    samples_learned = steps * cfg.algorithm.num_epochs
    return {
        "iterations": len(rows),
        "iteration_s": round(wall, 3),
        "env_steps_per_iteration": steps,
        "env_steps_per_s": round(steps / wall, 1),
        "sampling_steps_per_s": round(steps / sampling, 1) if sampling else None,
        "learner_samples_per_s": round(samples_learned / learning, 1) if learning else None,
        "sampling_s": round(sampling, 3),
        "learning_s": round(learning, 3),
        "other_s": round(max(0.0, wall - sampling - learning), 3),
        "raw": rows,
    }


def main(argv: list[str] | None = None) -> None:
    args = common.parser("rl_throughput", __doc__).parse_args(argv)
    started = common.setup(args)
    import torch

    iterations = 2 if args.quick else 5
    model_dir = common.tiny_model(args.work, "tiny")
    cfg = run_config(model_dir, str(Path(args.work) / "rl"), args.quick, "lmrl/Maze-v0", "choose")
    threads = torch.get_num_threads()
    bare_iteration = bare_side(cfg, model_dir)
    lmrl_iteration, stop = lmrl_side(cfg, model_dir)
    torch.set_num_threads(threads)  # the same threads for both sides
    raw: dict[str, list] = {"lmrl": [], "bare": []}
    try:
        lmrl_iteration(), bare_iteration()  # warm-up: connectors, caches, allocator
        for _ in range(iterations):  # the sides take turns, so a busy machine slows both alike
            raw["lmrl"].append(lmrl_iteration())
            raw["bare"].append(bare_iteration())
    finally:
        stop()
    ours, bare = _summarise(raw["lmrl"], cfg), _summarise(raw["bare"], cfg)
    rows = []
    for name, side in (("lmrl (RLlib PPO)", ours), ("bare PPO loop", bare)):
        rows.append([
            name, side["env_steps_per_s"], side["learner_samples_per_s"], side["iteration_s"],
            side["sampling_s"], side["learning_s"], side["other_s"],
        ])  # fmt: skip
    a, r = cfg.algorithm, cfg.resources
    common.report(
        "rl_throughput",
        args,
        title=f"PPO throughput, {cfg.env.id} ({cfg.policy.action_mode}), tiny GPT-2, {a.train_batch_size} "
        f"steps/iteration, {a.num_epochs} epochs x minibatch {a.minibatch_size}, {r.num_envs_per_env_runner} envs",
        columns=[
            "side",
            "env steps/s",
            "learner samples/s",
            "iteration s",
            "sampling s",
            "learning s",
            "other s",
        ],
        rows=rows,
        lmrl=ours,
        baseline={**bare, "name": "bare single-process PPO loop, same module and envs"},
        ratio_value=common.ratio(ours["env_steps_per_s"], bare["env_steps_per_s"]),
        ratio_meaning="lmrl env steps/s / bare loop env steps/s (whole iterations)",
        extra={"config": cfg.model_dump(mode="json", by_alias=True)},
        started=started,
    )


if __name__ == "__main__":
    main()
