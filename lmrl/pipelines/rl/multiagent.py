"""Multi-agent training: PettingZoo text envs through RLlib's multi-agent API.

:class:`RLlibTextMultiAgentEnv` is the turn-based ``MultiAgentEnv`` RLlib
builds on every runner. It plays a multi-agent lmrl env through its AEC form
(``lmrl.envs.multiagent.make_aec``), encodes each acting agent's observation
with the same token adapter as single-agent training, and plays itself:

* seats mapped to a *scripted* policy (``random`` or ``expert``) -- they never
  reach RLlib, so an LLM policy trains against a fixed opponent;
* turns whose only admissible action is ``"wait"`` (Parallel envs).

The run config chooses the setting::

    policies:                 # names -> {} for an LLM policy, {scripted: random|expert}
      shared: {}
    policy_mapping:           # agent id -> policy name (default: all agents -> the first LLM policy)
      player_0: shared
      player_1: shared        # self-play: one LLM policy plays both seats

Separate LLM policies are two ``{}`` entries mapped to different agents.

Self-play against past selves (fictitious self-play, as in OpenAI Five and
AlphaStar's leagues) keeps frozen copies of a self-play policy as opponents::

    policies:
      shared: {snapshots: 4, snapshot_every: 5, snapshot_games: 0.5}

In half of the games one seat, drawn at random, is played by one of the 4
snapshots (each a module ``shared@past0`` ... that never trains); every 5
iterations the oldest snapshot is replaced by the current weights. Playing
only the current self, a shared policy's X and O strategies can chase each
other in cycles; past selves keep old weaknesses punished.

A self-play policy can also meet a scripted sparring partner in a share of
its games (``{sparring: random, sparring_games: 0.25}``): the seat it takes
is played inside the env, like a fixed scripted opponent, for that game only.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from lmrl.envs.adapter import AdapterConfig, TextCodec
from lmrl.errors import ConfigError, did_you_mean
from lmrl.pipelines.config import RunConfig

WAIT = "wait"
#: In a multi-agent run's ``export/``: which exported policy plays which seat.
MULTIAGENT_FILE = "multiagent.json"


def resolve_mapping(cfg: RunConfig, agents: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Checks ``policies``/``policy_mapping`` against the env's agents.

    Returns:
        (agent -> LLM policy name, agent -> scripted kind, LLM policy names).

    Raises:
        ConfigError: An unknown agent or policy name, or no LLM policy at all.
    """
    policies = {name: spec.scripted for name, spec in cfg.policies.items()} or {"shared": None}
    llm = [name for name, kind in policies.items() if kind is None]
    if not llm:
        raise ConfigError(
            f"policies {sorted(policies)} are all scripted; add an LLM policy, e.g. `policies: {{shared: {{}}}}`"
        )
    mapping = dict(cfg.policy_mapping)
    for agent, name in mapping.items():
        if agent not in agents:
            raise ConfigError(
                f"policy_mapping names agent `{agent}`, but `{cfg.env.id}` has agents {agents}."
                + did_you_mean(agent, agents)
            )
        if name not in policies:
            raise ConfigError(
                f"policy_mapping.{agent} is `{name}`, which is not in policies {sorted(policies)}."
                + did_you_mean(name, policies)
            )
    for agent in agents:
        mapping.setdefault(agent, llm[0])
    to_llm = {a: p for a, p in mapping.items() if policies[p] is None}
    scripted = {a: policies[p] for a, p in mapping.items() if policies[p] is not None}
    return to_llm, scripted, sorted({to_llm[a] for a in to_llm})


def snapshot_module_id(policy: str, slot: int) -> str:
    """The module id of snapshot ``slot`` of ``policy``."""
    return f"{policy}@past{slot}"


def _self_play_seats(to_llm: dict[str, str], name: str, option: str, off: str) -> list[str]:
    seats = sorted(a for a, p in to_llm.items() if p == name)
    if len(seats) < 2:
        raise ConfigError(
            f"policies.{name}.{option} needs `{name}` to play at least two seats (self-play), "
            f"but policy_mapping gives it {seats or 'none'}; map more agents to `{name}` or set {option}: {off}"
        )
    return seats


def sparring_plan(cfg: RunConfig, to_llm: dict[str, str]) -> list[dict[str, Any]]:
    """Self-play policies with a scripted sparring partner: ``seats``, ``kind``, ``games`` each.

    Raises:
        ConfigError: A policy with sparring that plays fewer than two seats.
    """
    return [
        {"seats": _self_play_seats(to_llm, name, "sparring", "null"), "kind": spec.sparring, "games": spec.sparring_games}
        for name, spec in cfg.policies.items()
        if spec.sparring
    ]


def snapshot_plan(cfg: RunConfig, to_llm: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The snapshot opponents of each LLM policy that asks for them.

    Returns:
        policy -> ``modules`` (snapshot module ids), ``seats`` (the agents it
        plays), ``every`` (iterations between snapshots), ``games`` (share of
        games with a snapshot opponent).

    Raises:
        ConfigError: A policy with snapshots that plays fewer than two seats.
    """
    plan = {}
    for name, spec in cfg.policies.items():
        if not spec.snapshots:
            continue
        seats = _self_play_seats(to_llm, name, "snapshots", "0")
        plan[name] = {
            "modules": [snapshot_module_id(name, i) for i in range(spec.snapshots)],
            "seats": seats,
            "every": spec.snapshot_every,
            "games": spec.snapshot_games,
        }
    return plan


class PolicyMapping:
    """Picklable ``policy_mapping_fn``: agent id -> module id, per episode.

    Without snapshots the mapping is fixed. With them, the episode's id seeds
    the draw, so every agent of one episode sees the same one: whether it is a
    snapshot game, which seat the snapshot plays, and which snapshot.
    """

    def __init__(self, mapping: dict[str, str], snapshots: dict[str, dict[str, Any]] | None = None) -> None:
        self.mapping = dict(mapping)
        self.snapshots = dict(snapshots or {})

    def __call__(self, agent_id: str, episode: Any = None, **kwargs: Any) -> str:
        policy = self.mapping[agent_id]
        plan = self.snapshots.get(policy)
        if plan is None or episode is None:
            return policy
        rng = random.Random(f"{episode.id_}/{policy}")
        if rng.random() >= plan["games"]:
            return policy
        seat, module = rng.choice(plan["seats"]), rng.choice(plan["modules"])
        return module if agent_id == seat else policy


def _set_module_state(module_id: str, state: dict[str, Any], env_runner: Any) -> None:
    env_runner.module[module_id].set_state(state)


class SnapshotCallback(RLlibCallback):
    """Self-play with snapshots: refreshes the frozen past copies of each policy (see :class:`PolicyMapping`)."""

    def on_train_result(self, *, algorithm, metrics_logger=None, result=None, **kwargs) -> None:
        """Every ``snapshot_every`` iterations, the oldest snapshot takes the current weights."""
        mapping = algorithm.config.policy_mapping_fn
        plans = getattr(mapping, "snapshots", None)
        if not plans:
            return
        iteration = int(result["training_iteration"]) if result else algorithm.iteration
        for policy, plan in plans.items():
            if iteration % plan["every"]:
                continue
            slot = plan["modules"][(iteration // plan["every"] - 1) % len(plan["modules"])]
            weights = algorithm.learner_group.get_weights([policy])[policy]
            algorithm.learner_group.set_weights({slot: weights})
            # Straight into each runner's module: RLlib's sync_weights skips runners that already
            # hold the learner's current weights_seq_no, which they do right after training.
            algorithm.env_runner_group.foreach_env_runner(
                functools.partial(_set_module_state, slot, weights), local_env_runner=True, timeout_seconds=60.0
            )


class RLlibTextMultiAgentEnv(MultiAgentEnv):
    """Turn-based RLlib view of an lmrl multi-agent env.

    ``config`` keys: ``env_id``, ``env_kwargs``, ``model_path`` (tokenizer),
    ``adapter`` (AdapterConfig dict), ``scripted`` (agent -> ``"random"`` or
    ``"expert"``) and ``sparring`` (:func:`sparring_plan`: per episode, with
    probability ``games``, one of ``seats`` is played by a scripted ``kind``).
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        from lmrl.envs.multiagent import make_aec
        from lmrl.pipelines.rl.builder import _tokenizer

        config = config or {}
        self.env = make_aec(config["env_id"], **config.get("env_kwargs", {}))
        self.codec = TextCodec(_tokenizer(config["model_path"]), AdapterConfig(**config["adapter"]))
        self.scripted: dict[str, str] = dict(config.get("scripted", {}))
        self.sparring: list[dict[str, Any]] = list(config.get("sparring", []))
        self._scripted_now = dict(self.scripted)
        self.possible_agents = [a for a in self.env.possible_agents if a not in self.scripted]
        self.agents = list(self.possible_agents)
        obs_space, act_space = self.codec.observation_space(), self.codec.action_space()
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent

        if seed is not None:
            self._rng = np.random.default_rng(seed)
        episode_seed = int(self._rng.integers(2**31))
        self.env.reset(seed=episode_seed, options=options)
        self._scripted_now = dict(self.scripted)
        for plan in self.sparring:
            if self._rng.random() < plan["games"]:
                self._scripted_now[plan["seats"][int(self._rng.integers(len(plan["seats"])))]] = plan["kind"]
        self._opponents = {
            a: RandomMultiAgent(episode_seed + i) if kind == "random" else ExpertMultiAgent()
            for i, (a, kind) in enumerate(sorted(self._scripted_now.items()))
        }
        self._pending = {a: 0.0 for a in self.possible_agents}
        self._final: dict[str, tuple[dict, dict]] = {}
        self._admissible: dict[str, tuple[str, ...]] = {}
        self._acted: set[str] = set()
        self._truncated = False
        obs, infos, _ = self._advance()
        return obs, infos

    def _advance(self) -> tuple[dict, dict, bool]:
        """Plays scripted seats and waits until an RLlib agent must act (or the game ends)."""
        for agent in self.env.agent_iter():
            obs, reward, terminated, truncated, info = self.env.last()
            if agent in self._scripted_now:
                self.env.step(None if terminated or truncated else self._opponents[agent].act(agent, obs, info, self.env))
                continue
            self._pending[agent] += float(reward)
            if terminated or truncated:
                self._truncated |= bool(truncated) and not terminated
                self._final[agent] = (obs, dict(info))
                self.env.step(None)
                continue
            if tuple(obs["actions"]) == (WAIT,):
                self.env.step(WAIT)
                continue
            self._admissible[agent] = tuple(obs["actions"])
            return {agent: self.codec.encode_observation(obs)}, {agent: dict(info)}, False
        return {}, {}, True

    def step(self, action_dict: dict[str, Any]):
        (agent, action), *rest = action_dict.items()
        assert not rest, f"turn-based env got actions for several agents: {list(action_dict)}"
        self.env.step(self.codec.action_text(action, self._admissible[agent]))
        self._acted.add(agent)
        obs, infos, done = self._advance()
        if not done:
            rewards = {a: self._pending[a] for a in self._acted}
            for a in self._acted:
                self._pending[a] = 0.0
            return obs, rewards, {"__all__": False}, {"__all__": False}, infos
        obs, infos = {}, {}
        for a in self._acted:
            final_obs, info = self._final.get(a, (self.env.observe(a), {}))
            obs[a], infos[a] = self.codec.encode_observation(final_obs), info
        rewards = {a: self._pending[a] for a in self._acted}
        return obs, rewards, {"__all__": not self._truncated}, {"__all__": self._truncated}, infos
