"""``evaluate``: a trained policy against the random and expert baselines, same seeds.

The policy plays ``n`` episodes in lockstep (one batched forward pass per
step for all unfinished episodes), greedily and sampled; the scripted random
and expert agents play the same seeds. Transcripts of the first few greedy
episodes are saved for reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import lmrl.envs
from lmrl.envs.adapter import user_turn
from lmrl.envs.agents import ExpertAgent, RandomAgent
from lmrl.envs.rollout import MultiAgentReport, RolloutReport, run_episodes
from lmrl.errors import PolicyError
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.rl.multiagent import MULTIAGENT_FILE
from lmrl.policies.text_policy import META_FILE, PolicyAgent, TextPolicy


def resolve_policy_dir(path: str | Path) -> Path:
    """A run directory -> its ``export/``; an export directory -> itself."""
    p = Path(path)
    if (p / META_FILE).is_file():
        return p
    if (p / "export" / META_FILE).is_file():
        return p / "export"
    if not p.exists():
        raise PolicyError(f"policy path `{path}` does not exist; pass a run directory or its `export/` folder")
    raise PolicyError(
        f"`{path}` holds no exported policy ({META_FILE} missing); pass a run directory that "
        "finished training, or its `export/` folder"
    )


def is_bare_model(path: str) -> bool:
    """True for a model with no lmrl policy around it: a catalog name or an HF directory without ``lmrl.json``."""
    from lmrl.policies.lm import is_local_model_dir
    from lmrl.policies.models import CATALOG

    if path in CATALOG:
        return True
    p = Path(path)
    return is_local_model_dir(p) and not (p / META_FILE).is_file() and not (p / "export" / META_FILE).is_file()


def zero_shot_config(model: str, env_id: str) -> RunConfig:
    """The run config ``lmrl train`` would start ``model`` on ``env_id`` with (the env's own action mode)."""
    mode = lmrl.envs.env_info(env_id).get("default_action_mode") or "choose"
    return RunConfig.model_validate({"env": {"id": env_id}, "policy": {"model": model, "action_mode": mode}})


def zero_shot_policy(cfg: RunConfig) -> TextPolicy:
    """The untrained ``cfg.policy.model`` as a policy for ``cfg.env.id``, prompted as training would prompt it.

    Args:
        cfg: A run config; its ``policy`` section decides the prompt (chat or
            plain), candidate scoring and temperature, exactly as ``lmrl train`` would.
    """
    from lmrl.pipelines.policy_setup import adapter_config
    from lmrl.policies.lm import load_lm

    lm, tokenizer = load_lm(cfg.policy.model)
    meta = {"env_id": cfg.env.id, "env_kwargs": dict(cfg.env.kwargs), "zero_shot": cfg.policy.model}
    return TextPolicy(lm, tokenizer, adapter_config(cfg), cfg.policy.temperature, meta)


def load_policy(path: str | Path) -> TextPolicy:
    """Loads the exported policy of a run directory or export directory."""
    return TextPolicy.from_pretrained(resolve_policy_dir(path))


def load_policy_agent(path: str | Path, greedy: bool = True, seed: int = 0) -> PolicyAgent:
    """The exported policy behind the envs' agent API (``act(obs, info, env)``)."""
    return PolicyAgent(load_policy(path), greedy=greedy, seed=seed)


def run_policy_episodes(
    policy: TextPolicy,
    env_id: str,
    n: int,
    seed: int = 0,
    greedy: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    keep_transcripts: int = 0,
    max_steps: int = 1000,
) -> RolloutReport:
    """Plays ``n`` episodes (seeds ``seed + i``) with all unfinished episodes batched per step."""
    envs = [lmrl.envs.make(env_id, **(env_kwargs or {})) for _ in range(n)]
    report = RolloutReport(env_id=env_id, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    obs, infos = zip(*(env.reset(seed=seed + i) for i, env in enumerate(envs)), strict=True)
    obs, infos = list(obs), list(infos)
    returns, lengths = [0.0] * n, [0] * n
    transcripts: list[list[tuple[str, str, float]]] = [[] for _ in range(n)]
    active = list(range(n))
    # Multi-turn chat: each episode's earlier (user turn, action) pairs, rendered as chat turns.
    multi_turn = policy.codec.multi_turn
    history: list[list[tuple[str, str]]] = [[] for _ in range(n)]

    def shown(i: int) -> dict[str, Any]:
        if not multi_turn:
            return obs[i]
        return {**obs[i], "text": user_turn(obs[i], infos[i]), "history": tuple(history[i])}

    while active:
        actions = policy.act([shown(i) for i in active], greedy=greedy, generator=generator)
        still = []
        for i, action in zip(active, actions, strict=True):
            text = obs[i]["text"]
            if multi_turn:
                history[i].append((user_turn(obs[i], infos[i]), action))
            obs[i], reward, terminated, truncated, infos[i] = envs[i].step(action)
            returns[i] += float(reward)
            lengths[i] += 1
            if i < keep_transcripts:
                transcripts[i].append((text, action, float(reward)))
            if not (terminated or truncated or lengths[i] >= max_steps):
                still.append(i)
        active = still
    for env in envs:
        env.close()
    report.returns, report.lengths = returns, lengths
    report.successes = [bool(info.get("success", False)) for info in infos]
    report.transcripts = transcripts[:keep_transcripts]
    report.final_texts = [o["text"] for o in obs[:keep_transcripts]]
    return report


def evaluate(
    path: str,
    env_id: str | None = None,
    n: int = 100,
    seed: int = 0,
    out_dir: str | None = None,
    transcripts: int = 5,
    zero_shot: RunConfig | None = None,
    sampled: bool = True,
) -> dict[str, Any]:
    """Greedy and sampled success rate and mean return, beside random and expert baselines.

    Args:
        path: A run directory or exported policy directory; or, zero-shot, a
            model (a catalog name or an HF directory without ``lmrl.json``)
            with ``env_id``.
        env_id: The env to evaluate on (default: the one the policy was trained on).
        n: Episodes per agent (seeds ``seed .. seed + n - 1``).
        seed: First seed.
        out_dir: Where to write ``eval.json`` and ``transcripts.jsonl``
            (default: ``<policy dir>/../eval``).
        transcripts: Greedy episodes to save as transcripts.
        zero_shot: Zero-shot only: the run config whose ``env`` and ``policy``
            sections decide the prompting (default: the env's defaults, as
            ``lmrl train`` would set them for ``path``).
        sampled: Also play the policy sampled (False: greedy only, half the LM's work).

    Returns:
        The report (also written to ``eval.json``).
    """
    if is_bare_model(str(path)):
        if not env_id and zero_shot is None:
            raise PolicyError(f"`{path}` is a model, not a trained policy: pass --env ID to evaluate it zero-shot")
        cfg = zero_shot or zero_shot_config(str(path), str(env_id))
        lmrl.envs.make(cfg.env.id, **cfg.env.kwargs).close()
        name = Path(str(path)).name or str(path)
        out = out_dir or str(Path("runs") / f"zero-shot-{name}-{cfg.env.id.replace('/', '-')}")
        if lmrl.envs.env_kind(cfg.env.id) != "single":  # the model in every seat
            agents = list(lmrl.envs.make(cfg.env.id, **cfg.env.kwargs).possible_agents)
            plan = {"env_id": cfg.env.id, "env_kwargs": dict(cfg.env.kwargs),
                    "policies": dict.fromkeys(agents, "policy"), "scripted": {}}  # fmt: skip
            return evaluate_multiagent(
                str(path), n=n, seed=seed, out_dir=out, plan=plan,
                policies={"policy": zero_shot_policy(cfg)}, sampled=sampled,
            )  # fmt: skip
        return _evaluate_policy(
            zero_shot_policy(cfg), str(path), cfg.env.id, dict(cfg.env.kwargs), n, seed, Path(out), transcripts, sampled
        )
    if zero_shot is not None:
        raise PolicyError("--set applies to zero-shot evaluation of a model only; a trained policy keeps its settings")
    for candidate in (Path(path), Path(path) / "export"):
        if (candidate / MULTIAGENT_FILE).is_file():
            return evaluate_multiagent(candidate, n=n, seed=seed, out_dir=out_dir, sampled=sampled)
    policy_dir = resolve_policy_dir(path)
    policy = TextPolicy.from_pretrained(policy_dir)
    env_id = env_id or policy.meta.get("env_id")
    if not env_id:
        raise PolicyError(f"`{path}` does not record its env; pass --env ID")
    env_kwargs = policy.meta.get("env_kwargs", {}) if env_id == policy.meta.get("env_id") else {}
    # A multi-agent env: one policy (e.g. SFT on `lmrl data collect` demos) in every seat.
    if lmrl.envs.env_kind(env_id) != "single":
        agents = list(lmrl.envs.make(env_id, **env_kwargs).possible_agents)
        plan = {"env_id": env_id, "env_kwargs": env_kwargs, "policies": dict.fromkeys(agents, "policy"), "scripted": {}}
        return evaluate_multiagent(
            policy_dir, n=n, seed=seed, out_dir=out_dir, plan=plan, policies={"policy": policy}, sampled=sampled
        )
    lmrl.envs.make(env_id, **env_kwargs).close()  # unknown id -> clear error before any work
    out = Path(out_dir) if out_dir else policy_dir.parent / "eval"
    return _evaluate_policy(policy, str(policy_dir), env_id, env_kwargs, n, seed, out, transcripts, sampled)


def _evaluate_policy(
    policy: TextPolicy,
    label: str,
    env_id: str,
    env_kwargs: dict[str, Any],
    n: int,
    seed: int,
    out: Path,
    transcripts: int,
    with_sampled: bool = True,
) -> dict[str, Any]:
    greedy = run_policy_episodes(policy, env_id, n, seed, True, env_kwargs, keep_transcripts=transcripts)
    sampled = run_policy_episodes(policy, env_id, n, seed, False, env_kwargs) if with_sampled else None
    random_ = run_episodes(env_id, RandomAgent(seed), n, seed, env_kwargs)
    expert = run_episodes(env_id, ExpertAgent(), n, seed, env_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "transcripts.jsonl", "w", encoding="utf-8") as f:
        for i, steps in enumerate(greedy.transcripts):
            record = {
                "episode": i,
                "seed": seed + i,
                "return": greedy.returns[i],
                "success": greedy.successes[i],
                "steps": [{"observation": o, "action": a, "reward": r} for o, a, r in steps],
                "final_observation": greedy.final_texts[i],
            }
            f.write(json.dumps(record) + "\n")
    report = {
        "policy": label,
        "env_id": env_id,
        "episodes": n,
        "seed": seed,
        "greedy_success_rate": greedy.success_rate,
        "greedy_mean_return": greedy.mean_return,
        "greedy_mean_length": greedy.mean_length,
        "sampled_success_rate": sampled.success_rate if sampled else None,
        "sampled_mean_return": sampled.mean_return if sampled else None,
        "random_success_rate": random_.success_rate,
        "random_mean_return": random_.mean_return,
        "expert_success_rate": expert.success_rate,
        "expert_mean_return": expert.mean_return,
        "transcripts_path": str(out / "transcripts.jsonl"),
    }
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    return report


class PolicyMultiAgent:
    """A :class:`TextPolicy` behind the multi-agent agent API (``act(agent, obs, info, env)``)."""

    def __init__(self, policy: TextPolicy, greedy: bool = True, seed: int = 0) -> None:
        self.policy = policy
        self.greedy = greedy
        self.generator = torch.Generator().manual_seed(seed)

    def act(self, agent: str, obs: dict[str, Any], info: dict[str, Any], env: Any) -> str:
        """One action for the agent to move."""
        return self.policy.act([obs], greedy=self.greedy, generator=self.generator)[0]


def against_random(
    env_id: str, agents: list[str], seat: str, policy: TextPolicy, n: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> MultiAgentReport:
    """``n`` games with ``policy`` greedy in ``seat`` and random agents in the other seats.

    Args:
        env_id: A multi-agent catalog id.
        agents: Every seat, sorted (seat ``i``'s random agent is seeded ``seed + i``).
        seat: The policy's seat.
        policy: The policy.
        n: Games (seeds ``seed .. seed + n - 1``).
        seed: First seed.
        env_kwargs: Constructor keyword arguments for the env.

    Returns:
        The report of the games, per seat.
    """
    from lmrl.envs.multiagent import RandomMultiAgent

    players: dict[str, Any] = {a: RandomMultiAgent(seed + i) for i, a in enumerate(agents)}
    players[seat] = PolicyMultiAgent(policy, greedy=True, seed=seed)
    return run_episodes(env_id, players, n, seed, env_kwargs)


def evaluate_multiagent(
    export_dir: str | Path,
    n: int = 100,
    seed: int = 0,
    out_dir: str | None = None,
    plan: dict[str, Any] | None = None,
    policies: dict[str, TextPolicy] | None = None,
    sampled: bool = True,
) -> dict[str, Any]:
    """Evaluates a multi-agent run's policies, seat by seat.

    Reports, per agent: success with the trained seat plan (LLM seats greedy,
    scripted seats as in training), success of each LLM seat against random
    opponents, and the all-random and all-expert baselines. The top-level
    ``greedy_success_rate`` etc. average over the LLM seats.

    Args:
        export_dir: A multi-agent run's ``export/`` (its seat plan and one policy per id).
        n: Episodes per line of the report.
        seed: First seed.
        out_dir: Where ``eval.json`` goes (default: ``<export_dir>/../eval``).
        plan: A seat plan to use instead of the export's (``env_id``, ``env_kwargs``,
            ``policies``: agent -> policy id, ``scripted``: agent -> random|expert).
        policies: The policies of ``plan``, by id (default: loaded from ``export_dir/<id>``).
        sampled: Also play the seat plan with the policies sampled (False: greedy only).
    """
    from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent

    export_dir = Path(export_dir)
    plan = plan or json.loads((export_dir / MULTIAGENT_FILE).read_text())
    env_id, kwargs = plan["env_id"], plan.get("env_kwargs", {})
    policies = policies or {
        pid: TextPolicy.from_pretrained(export_dir / pid) for pid in sorted(set(plan["policies"].values()))
    }

    def seat_plan(greedy: bool, others: str | None) -> dict[str, Any]:
        players: dict[str, Any] = {}
        for agent, pid in plan["policies"].items():
            players[agent] = PolicyMultiAgent(policies[pid], greedy=greedy, seed=seed)
        for agent, kind in plan["scripted"].items():
            players[agent] = RandomMultiAgent(seed) if (others or kind) == "random" else ExpertMultiAgent()
        return players

    llm_agents = sorted(plan["policies"])
    trained = run_episodes(env_id, seat_plan(True, None), n, seed, kwargs)
    with_sampled = sampled
    sampled = run_episodes(env_id, seat_plan(False, None), n, seed, kwargs) if with_sampled else None
    versus_random = {}
    seats = sorted(set(plan["policies"]) | set(plan["scripted"]))
    for agent in llm_agents:
        report = against_random(env_id, seats, agent, policies[plan["policies"][agent]], n, seed, kwargs)
        versus_random[agent] = report.success_rate(agent)
    random_ = run_episodes(env_id, RandomMultiAgent(seed), n, seed, kwargs)
    expert = run_episodes(env_id, ExpertMultiAgent(), n, seed, kwargs)

    def mean(report, fn) -> float:
        return sum(fn(report, a) for a in llm_agents) / len(llm_agents)

    report = {
        "policy": str(export_dir),
        "env_id": env_id,
        "episodes": n,
        "seed": seed,
        "multiagent": True,
        "seat_plan": {**plan["policies"], **{a: f"scripted:{k}" for a, k in plan["scripted"].items()}},
        "greedy_success_rate": mean(trained, lambda r, a: r.success_rate(a)),
        "greedy_mean_return": mean(trained, lambda r, a: r.mean_return(a)),
        "sampled_success_rate": mean(sampled, lambda r, a: r.success_rate(a)) if sampled else None,
        "sampled_mean_return": mean(sampled, lambda r, a: r.mean_return(a)) if sampled else None,
        "random_success_rate": mean(random_, lambda r, a: r.success_rate(a)),
        "random_mean_return": mean(random_, lambda r, a: r.mean_return(a)),
        "expert_success_rate": mean(expert, lambda r, a: r.success_rate(a)),
        "expert_mean_return": mean(expert, lambda r, a: r.mean_return(a)),
        "per_agent": {
            a: {
                "greedy_success_rate": trained.success_rate(a),
                "vs_random_success_rate": versus_random[a],
                "random_success_rate": random_.success_rate(a),
                "expert_success_rate": expert.success_rate(a),
            }
            for a in llm_agents
        },
        "transcripts_path": None,
    }
    out = Path(out_dir) if out_dir else export_dir.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2))
    return report
