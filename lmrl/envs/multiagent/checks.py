"""Health checks for a multi-agent env, the counterpart of :mod:`lmrl.envs.checks`.

Example:
    >>> from lmrl.envs.multiagent.checks import check_multiagent_env_id
    >>> all(r.ok for r in check_multiagent_env_id("lmrl/TicTacToe-v0", episodes=5))
    True
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import pickle
import warnings
from collections.abc import Callable
from typing import Any

from lmrl.envs.checks import MALFORMED_ACTIONS, CheckResult
from lmrl.envs.multiagent import is_parallel, make_aec, make_parallel, multiagent_env_info
from lmrl.envs.multiagent.rollout import ExpertMultiAgent, RandomMultiAgent, run_multiagent_episodes
from lmrl.errors import InvalidActionError


def _api(env_id: str) -> str:
    from pettingzoo.test import api_test, parallel_api_test

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # "should be Box or Discrete": text spaces are the point
        if is_parallel(env_id):
            parallel_api_test(make_parallel(env_id), num_cycles=100)
            api_test(make_aec(env_id), num_cycles=100)
            return "parallel_api_test and api_test (through parallel_to_aec) passed"
        api_test(make_aec(env_id), num_cycles=100)
    return "api_test passed"


def _seeding(env_id: str) -> str:
    from pettingzoo.test import parallel_seed_test, seed_test

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if is_parallel(env_id):
            parallel_seed_test(lambda: make_parallel(env_id), num_cycles=50)
        seed_test(lambda: make_aec(env_id), num_cycles=50)
    a = run_multiagent_episodes(env_id, RandomMultiAgent(0), n=3, keep_transcripts=3)
    b = run_multiagent_episodes(env_id, RandomMultiAgent(0), n=3, keep_transcripts=3)
    if a.transcripts != b.transcripts or a.returns != b.returns:
        raise AssertionError("same seeds and agents, different episodes")
    return "PettingZoo seed test passed; 3 seeded episodes identical"


def _trace(env: Any, agent: Any, moves: int | None = None) -> list[tuple]:
    """Plays on from the env's current state (``moves`` of them, or to the end) and records it."""
    out = []
    for name in env.agent_iter():
        obs, reward, terminated, truncated, info = env.last()
        out.append((name, obs["text"], tuple(obs["actions"]), reward, terminated, truncated))
        env.step(None if terminated or truncated else agent.act(name, obs, info, env))
        if moves is not None and len(out) >= moves:
            break
    return out


def _pickle(env_id: str, seed: int) -> str:
    env = make_aec(env_id)
    env.reset(seed=seed)
    agent = RandomMultiAgent(seed)
    _trace(env, agent, moves=2)
    clone, clone_agent = pickle.loads(pickle.dumps(env)), copy.deepcopy(agent)
    a, b = _trace(env, agent), _trace(clone, clone_agent)
    if a != b:
        raise AssertionError("the unpickled env diverged from the original")
    return f"pickled after 2 moves; the copy continued identically for {len(a)} moves"


def _rollouts(env_id: str, seed: int, episodes: int, agent: Any) -> str:
    env = make_aec(env_id)
    agents = env.possible_agents
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        for name in env.agent_iter():
            obs, reward, terminated, truncated, info = env.last()
            if obs not in env.observation_space(name):
                raise AssertionError(
                    f"episode {ep}: {name}'s observation not in its space: {obs!r:.200}"
                )
            if not math.isfinite(reward):
                raise AssertionError(f"episode {ep}: {name}'s reward {reward!r} is not finite")
            if not isinstance(info.get("success"), bool):
                raise AssertionError(
                    f"episode {ep}: {name}'s info['success'] must be a bool, got {info.get('success')!r}"
                )
            env.step(None if terminated or truncated else agent.act(name, obs, info, env))
    report = run_multiagent_episodes(env_id, agent, n=episodes, seed=seed)
    rates = ", ".join(f"{a} {report.success_rate(a):.2f}" for a in agents)
    return f"{episodes} episodes, success rate {rates}"


def _first_move(env_id: str, seed: int, action: Any) -> list[tuple[str, dict, float]]:
    """Sends ``action`` as the first move (every agent's, for a Parallel env): (agent, obs, reward)."""
    if is_parallel(env_id):
        par = make_parallel(env_id)
        par.reset(seed=seed)
        obs, rewards, *_ = par.step({a: action for a in par.agents})
        return [(a, obs[a], rewards[a]) for a in obs]
    env = make_aec(env_id)
    env.reset(seed=seed)
    env.step(action)
    return [(a, env.observe(a), env.rewards[a]) for a in env.agents]


def _malformed(env_id: str, seed: int) -> str:
    space = make_aec(env_id).observation_space
    for label, action in MALFORMED_ACTIONS.items():
        for agent, obs, reward in _first_move(env_id, seed, action):
            if obs not in space(agent):
                raise AssertionError(f"action {label!r}: {agent}'s observation not in its space")
            if not math.isfinite(reward):
                raise AssertionError(f"action {label!r}: {agent}'s reward is not finite")
    return "answered " + ", ".join(MALFORMED_ACTIONS)


def _non_text(env_id: str, seed: int) -> str:
    try:
        _first_move(env_id, seed, 3)
    except InvalidActionError as exc:
        return f"step(3) raised InvalidActionError: {exc}"
    raise AssertionError("step(3) did not raise InvalidActionError")


def check_multiagent_env_id(env_id: str, seed: int = 0, episodes: int = 20) -> list[CheckResult]:
    """Runs every check on a multi-agent env; a failing check never stops the others.

    Raises:
        UnknownEnvError: Not a multi-agent id.
    """
    info = multiagent_env_info(env_id)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("make", lambda: f"{info['api']} env, agents {', '.join(info['agents'])}"),
        ("pettingzoo api test", lambda: _api(env_id)),
        ("determinism", lambda: _seeding(env_id)),
        ("pickle mid-episode", lambda: _pickle(env_id, seed)),
        ("random rollouts", lambda: _rollouts(env_id, seed, episodes, RandomMultiAgent(seed))),
        ("malformed action text", lambda: _malformed(env_id, seed)),
        ("non-text action", lambda: _non_text(env_id, seed)),
        ("expert rollouts", lambda: _rollouts(env_id, seed, episodes, ExpertMultiAgent())),
    ]
    results = []
    for name, run in checks:
        try:
            results.append(CheckResult(name, True, run()))
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(name, False, detail))
    return results
