"""``lmrl data collect``: episodes of an agent written as Parquet, ready for ``finetune``.

One row per step. ``prompt`` is the observation in the policy's own prompt
format (``"{text}\\nAction:"``, the presets') and ``response`` is ``" " + action``, so an
``sft`` run on expert episodes is behaviour cloning with the very token
boundaries the policy acts with. With ``policy_config`` (``--model NAME`` /
``--like CONFIG.yaml``) they are instead what ``lmrl train`` with that config
would act with -- for a pretrained instruct model the chat prompt and the
action as its candidate or sampled tokens (:mod:`lmrl.pipelines.lm_train.rl_format`). ``text`` (prompt + response) serves
``pretrain``; ``expert_action`` (what the scripted expert would have done,
whatever the acting agent did) gives preference pairs for reward models.

Multi-agent envs (``lmrl/TicTacToe-v0``...) are played through their AEC
form. The agent plays every seat; or, with ``opponent``, it plays one seat
per episode (seat ``i % n_seats`` in episode ``i``, so the seats take turns)
against the opponent in the others, and only its own moves are written.
Expert-against-random demos cover the positions a weak player leads to,
which expert-against-expert games never reach.

Columns: ``env_id``, ``episode_id``, ``seed``, ``turn``, ``observation``,
``admissible`` (list), ``prompt``, ``response``, ``action``,
``expert_action``, ``reward``, ``done``, ``success`` and ``episode_return``
(of the whole episode, for the acting agent), ``text``, ``agent`` (the seat,
multi-agent envs only).

Example:
    >>> path = collect("lmrl/Maze-v0", "expert", n=100, out="demos.parquet")  # doctest: +SKIP
    >>> path = collect("lmrl/TicTacToe-v0", "expert", n=400, out="ttt.parquet", opponent="random")  # doctest: +SKIP
    >>> cfg = zero_shot_config("smollm2-135m-instruct", "lmrl/Maze-v0")  # doctest: +SKIP
    >>> path = collect("lmrl/Maze-v0", "expert", n=200, out="chat.parquet", policy_config=cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmrl.envs.adapter import PROMPT_FORMAT
from lmrl.errors import RunError
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.lm_train.rl_format import META_KEY, RLFormat

COLUMNS = (
    "env_id", "episode_id", "seed", "turn", "observation", "admissible", "prompt", "response",
    "action", "expert_action", "reward", "done", "success", "episode_return", "text", "agent",
)  # fmt: skip


def _agents(policy: str, n: int, seed: int, greedy: bool):
    """``(act(batch of (obs, info, env)) -> actions, description)`` for random, expert or a policy directory."""
    if policy in ("random", "expert"):
        from lmrl.envs.agents import ExpertAgent, RandomAgent

        agents = [RandomAgent(seed + i) if policy == "random" else ExpertAgent() for i in range(n)]
        return lambda idx, obs, infos, envs: [agents[i].act(obs[i], infos[i], envs[i]) for i in idx]
    import torch

    from lmrl.pipelines.agents import require_policy_dir
    from lmrl.pipelines.evaluate import load_policy

    require_policy_dir(policy)

    text_policy = load_policy(policy)
    generator = torch.Generator().manual_seed(seed)
    return lambda idx, obs, infos, envs: text_policy.act([obs[i] for i in idx], greedy=greedy, generator=generator)


def collect(
    env_id: str,
    policy: str,
    n: int,
    out: str | Path,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    greedy: bool = True,
    progress: bool = True,
    opponent: str | None = None,
    policy_config: RunConfig | None = None,
) -> dict[str, Any]:
    """Plays ``n`` episodes (seeds ``seed .. seed + n - 1``) and writes them to ``out`` as Parquet.

    All unfinished episodes step together, so a trained policy acts on the
    whole batch in one forward pass. The file appears only when complete.

    Args:
        env_id: A catalog env id (single- or multi-agent).
        policy: ``random``, ``expert``, or a run / exported policy directory.
        n: Episodes.
        out: The Parquet file to write (parents created).
        seed: Seed of the first episode.
        env_kwargs: Env constructor arguments.
        greedy: With a trained policy: greedy (else sampled) actions.
        progress: Show a progress bar.
        opponent: Multi-agent envs only: ``random``, ``expert`` or a policy directory
            playing the other seats; ``policy`` then plays one seat per episode, in turn,
            and only its moves are written. ``None``: ``policy`` plays every seat.
        policy_config: Write ``prompt`` and ``response`` as ``lmrl train`` with this run
            config (its ``env`` and ``policy`` sections) would act: chat prompts for a
            pretrained instruct model. Its ``env.id`` must be ``env_id``; its ``env.kwargs``
            apply. ``None``: the plain ``"{text}\\nAction:"`` format.

    Returns:
        ``path``, ``episodes``, ``rows``, ``success_rate``, ``mean_return`` (multi-agent: over
        the written seats).
    """
    from lmrl.envs.catalog import env_kind

    if policy_config is not None:
        if policy_config.env.id != env_id:
            raise RunError(
                f"the run config's env.id ({policy_config.env.id}) is not the env to collect ({env_id}); "
                "collect for the env that config trains on"
            )
        if env_kwargs is not None and dict(env_kwargs) != dict(policy_config.env.kwargs):
            raise RunError(
                f"env_kwargs {env_kwargs!r} differ from the run config's env.kwargs "
                f"{dict(policy_config.env.kwargs)!r}; give them in one place"
            )
        env_kwargs = dict(policy_config.env.kwargs)
    single = env_kind(env_id) == "single"
    if single and opponent is not None:
        raise RunError(f"--opponent applies to multi-agent envs only, and `{env_id}` has one agent; drop --opponent")
    fmt = RLFormat.from_config(policy_config) if policy_config is not None else None
    if single:
        rows, successes, returns = _play(env_id, policy, n, seed, env_kwargs, greedy, progress, fmt)
    else:
        rows, successes, returns = _play_multiagent(
            env_id, policy, opponent, n, seed, env_kwargs, greedy, progress, fmt
        )
    path = _write(rows, out, fmt.meta if fmt is not None else None)
    return {
        "path": str(path),
        "episodes": n,
        "rows": len(rows),
        "success_rate": sum(successes) / len(successes) if successes else 0.0,
        "mean_return": sum(returns) / len(returns) if returns else 0.0,
    }


def _play(
    env_id, policy, n, seed, env_kwargs, greedy, progress, fmt: RLFormat | None = None
) -> tuple[list[dict], list[bool], list[float]]:
    """Single-agent episodes, batched across episodes: rows, per-episode success and return."""
    from rich.progress import Progress

    import lmrl.envs

    lmrl.envs.make(env_id, **(env_kwargs or {})).close()  # unknown id / bad kwargs: a clear error first
    act = _agents(policy, n, seed, greedy)
    envs = [lmrl.envs.make(env_id, **(env_kwargs or {})) for _ in range(n)]
    obs, infos = map(list, zip(*(env.reset(seed=seed + i) for i, env in enumerate(envs)), strict=True))
    rows: list[dict[str, Any]] = []
    episode_rows: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    active = list(range(n))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"collect {env_id} ({policy})", total=n)
        while active:
            actions = act(active, obs, infos, envs)
            still = []
            for i, action in zip(active, actions, strict=True):
                expert = _expert_action(envs[i])
                text, admissible = obs[i]["text"], [str(a) for a in obs[i].get("actions") or ()]
                prompt, response = _prompt_response(fmt, i, obs[i], infos[i], action)
                obs[i], reward, terminated, truncated, infos[i] = envs[i].step(action)
                done = bool(terminated or truncated)
                episode_rows[i].append({
                    "env_id": env_id, "episode_id": i, "seed": seed + i, "turn": len(episode_rows[i]),
                    "observation": text, "admissible": admissible,
                    "prompt": prompt, "response": response, "action": action, "expert_action": expert,
                    "reward": float(reward), "done": done, "text": prompt + response, "agent": None,
                })  # fmt: skip
                if done:
                    bar.advance(task)
                else:
                    still.append(i)
            active = still
    for env in envs:
        env.close()
    successes, returns = [], []
    for i, ep in enumerate(episode_rows):
        ret = sum(r["reward"] for r in ep)
        success = bool(infos[i].get("success", False))
        successes.append(success)
        returns.append(ret)
        rows.extend({**r, "success": success, "episode_return": ret} for r in ep)
    return rows, successes, returns


def _prompt_response(fmt: RLFormat | None, key, obs: dict, info: dict, action: str) -> tuple[str, str]:
    """The row's prompt and response: the plain format, or the RL policy's (``fmt``)."""
    if fmt is None:
        return PROMPT_FORMAT.format(text=obs["text"]), " " + action
    return fmt.render(key, obs, info, action)


def _play_multiagent(
    env_id, policy, opponent, n, seed, env_kwargs, greedy, progress, fmt: RLFormat | None = None
) -> tuple[list[dict], list[bool], list[float]]:
    """Multi-agent episodes through the AEC form: the written seats' rows, success and return."""
    from rich.progress import Progress

    from lmrl.envs.multiagent import make_aec

    env = make_aec(env_id, **(env_kwargs or {}))  # unknown id / bad kwargs: a clear error first
    seats = list(env.possible_agents)
    from lmrl.pipelines.agents import make_agent

    player = make_agent(policy, seed, greedy, multiagent=True)
    other = make_agent(opponent, seed + 1, greedy, multiagent=True, role="opponent") if opponent is not None else None
    rows: list[dict[str, Any]] = []
    successes: list[bool] = []
    returns: list[float] = []
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"collect {env_id} ({policy}{f' against {opponent}' if other else ''})", total=n)
            for i in range(n):
                env.reset(seed=seed + i)
                written = [seats[i % len(seats)]] if other is not None else seats
                episode: dict[str, list[dict[str, Any]]] = {a: [] for a in written}
                final: dict[str, dict[str, Any]] = {}
                for agent in env.agent_iter():
                    obs, reward, terminated, truncated, info = env.last()
                    if agent in episode and episode[agent]:
                        episode[agent][-1]["reward"] += float(reward)  # the reward of its last move
                    if terminated or truncated:
                        final[agent] = info
                        env.step(None)
                        continue
                    acting = player if agent in episode else other
                    action = acting.act(agent, obs, info, env)
                    if agent in episode:
                        # No earlier turns (key None): the multi-agent envs encode each observation alone.
                        prompt, response = _prompt_response(fmt, None, obs, info, action)
                        episode[agent].append({
                            "env_id": env_id, "episode_id": i, "seed": seed + i, "turn": len(episode[agent]),
                            "observation": obs["text"], "admissible": [str(a) for a in obs.get("actions") or ()],
                            "prompt": prompt, "response": response, "action": action,
                            "expert_action": _expert_action(env, agent), "reward": 0.0, "done": False,
                            "text": prompt + response, "agent": agent,
                        })  # fmt: skip
                    env.step(action)
                for agent, agent_rows in episode.items():
                    if not agent_rows:
                        continue
                    agent_rows[-1]["done"] = True
                    success = bool(final.get(agent, {}).get("success", False))
                    ret = sum(r["reward"] for r in agent_rows)
                    successes.append(success)
                    returns.append(ret)
                    rows.extend({**r, "success": success, "episode_return": ret} for r in agent_rows)
                bar.advance(task)
    finally:
        env.close()
    return rows, successes, returns


def _write(rows: list[dict[str, Any]], out: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Writes the rows as Parquet, atomically: readers never see half a file.

    ``meta`` (how the prompts were rendered) goes into the file's metadata under ``lmrl``.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{k: r[k] for k in COLUMNS} for r in rows], schema=_schema())
    if meta is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode("utf-8")})
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def _expert_action(env, agent: str | None = None) -> str | None:
    fn = getattr(env.unwrapped, "expert_action", None)
    if fn is None:
        return None
    try:
        return str(fn() if agent is None else fn(agent))
    except Exception:  # noqa: BLE001 - an env without an expert in this state
        return None


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("env_id", pa.string()), ("episode_id", pa.int64()), ("seed", pa.int64()), ("turn", pa.int64()),
        ("observation", pa.string()), ("admissible", pa.list_(pa.string())), ("prompt", pa.string()),
        ("response", pa.string()), ("action", pa.string()), ("expert_action", pa.string()),
        ("reward", pa.float64()), ("done", pa.bool_()), ("success", pa.bool_()),
        ("episode_return", pa.float64()), ("text", pa.string()), ("agent", pa.string()),
    ])  # fmt: skip


def preference_pairs(source: str | Path, out: str | Path, seed: int = 0) -> dict[str, Any]:
    """Preference pairs from collected episodes: the expert's action over another admissible one.

    Every step that has an ``expert_action`` and at least one other admissible
    action becomes ``{prompt, chosen: " " + expert, rejected: " " + other}``,
    the other drawn with ``seed``; the result trains a Bradley-Terry reward
    model (``lmrl finetune`` with ``task: reward_model``).

    Args:
        source: A Parquet file from :func:`collect`.
        out: The Parquet file to write.
        seed: Seed of the rejected-action draws.

    Returns:
        ``path`` and ``rows``.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lmrl.errors import DataError
    from lmrl.pipelines.lm_train.data import file_columns

    missing = {"prompt", "expert_action", "admissible"} - file_columns(Path(source), "parquet")
    if missing:
        raise DataError(f"{source}: missing column {', '.join(sorted(missing))}; pass a file from `lmrl data collect`")
    rng = np.random.default_rng(seed)
    rows = []
    for r in pq.read_table(source, columns=["prompt", "expert_action", "admissible"]).to_pylist():
        others = [a for a in (r["admissible"] or []) if a != r["expert_action"]]
        if r["expert_action"] and others:
            rejected = others[int(rng.integers(len(others)))]
            rows.append({"prompt": r["prompt"], "chosen": " " + r["expert_action"], "rejected": " " + rejected})
    if not rows:
        raise DataError(f"{source}: no step has an expert action and another admissible action to compare")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    os.replace(tmp, path)
    return {"path": str(path), "rows": len(rows)}
