"""Health checks for a catalog env of any kind: what ``lmrl envs check ENV_ID`` runs.

Each check returns a :class:`CheckResult`; a failing check never stops the
others (except a failed ``make``: nothing else can run). The checks, for every
kind: the env can be made, the kind's API test passes (Gymnasium's
``check_env``; PettingZoo's ``api_test``, and ``parallel_api_test`` for a
Parallel env), the same seeds give the same episodes, a pickled env continues
identically, random and expert rollouts stay inside the observation spaces
with finite rewards and a bool ``info["success"]``, malformed action text is
answered (never raised on), and a non-text action raises
:class:`~lmrl.errors.InvalidActionError`.

Example:
    >>> import lmrl
    >>> from lmrl.envs.checks import check_env_id
    >>> all(r.ok for r in check_env_id("lmrl/Maze-v0", episodes=5))
    True
    >>> all(r.ok for r in check_env_id("lmrl/TicTacToe-v0", episodes=5))
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
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from lmrl.envs import catalog
from lmrl.envs.agents import ExpertAgent, RandomAgent
from lmrl.envs.rollout import run_episodes
from lmrl.errors import InvalidActionError

#: Action texts every env must answer with a valid observation and a finite reward.
MALFORMED_ACTIONS: dict[str, str] = {
    "empty": "",
    "10,000 chars": "x" * 10_000,
    "control chars": "\x00\x07\x1b[31m",
    "not a number": "banana",
}
_MAX_EPISODE_STEPS = 10_000


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: Short name of the check.
        ok: Whether it passed.
        detail: What was found (figures when it passed, the problem when it failed).
    """

    name: str
    ok: bool
    detail: str = ""


def check_env_id(env_id: str, seed: int = 0, episodes: int = 20) -> list[CheckResult]:
    """Runs every check on a catalog env, single- or multi-agent.

    Args:
        env_id: Catalog id, for example ``"lmrl/Maze-v0"`` or ``"lmrl/TicTacToe-v0"``.
        seed: Base seed of the episodes.
        episodes: Episodes of random (and of expert) rollouts.

    Returns:
        One :class:`CheckResult` per check. If the env cannot be made, only that one.

    Raises:
        UnknownEnvError: ``env_id`` is not in the catalog.
    """
    kind = catalog.env_kind(env_id)  # UnknownEnvError with a suggestion, before anything else
    if kind == "single":
        checks = _single_agent_checks(env_id, seed, episodes)
    else:
        checks = _multi_agent_checks(env_id, seed, episodes, parallel=kind == "parallel")
    results = []
    for name, run in checks:
        try:
            results.append(CheckResult(name, True, run()))
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(name, False, detail))
            if name == "make":
                break
    return results


# --- what every kind shares ------------------------------------------------------------------


def _check_step(where: str, obs: Any, space: Any, reward: float) -> None:
    """Raises if ``obs`` is outside its space or ``reward`` is not finite."""
    if obs not in space:
        raise AssertionError(f"{where}: observation not in observation_space: {obs!r:.200}")
    if not math.isfinite(reward):
        raise AssertionError(f"{where}: reward {reward!r} is not finite")


def _check_success(where: str, info: dict[str, Any]) -> None:
    if not isinstance(info.get("success"), bool):
        raise AssertionError(
            f"{where}: info['success'] must be a bool, got {info.get('success')!r}"
        )


def _expect_invalid_action(step_non_text: Callable[[], Any]) -> str:
    """Runs ``step_non_text`` (a step with the action ``3``) and expects InvalidActionError."""
    try:
        step_non_text()
    except InvalidActionError as exc:
        if "str" not in str(exc):
            raise AssertionError(
                f"InvalidActionError should say a str is expected, got: {exc}"
            ) from exc
        return f"step(3) raised InvalidActionError: {exc}"
    except Exception as exc:
        raise AssertionError(
            f"step(3) raised {type(exc).__name__} instead of InvalidActionError: {exc}"
        ) from exc
    raise AssertionError("step(3) did not raise InvalidActionError")


def _first_difference(a: list[tuple], b: list[tuple]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"step {i}: {x!r} != {y!r}"
    return f"lengths {len(a)} != {len(b)}"


# --- single-agent (Gymnasium) envs -----------------------------------------------------------


def _single_agent_checks(
    env_id: str, seed: int, episodes: int
) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("make", lambda: _check_make(env_id)),
        ("gymnasium check_env", lambda: _check_gymnasium(env_id)),
        ("determinism", lambda: _check_determinism(env_id, seed)),
        ("pickle mid-episode", lambda: _check_pickle(env_id, seed)),
        ("random rollouts", lambda: _check_rollouts(env_id, seed, episodes, RandomAgent)),
        ("malformed action text", lambda: _check_malformed(env_id, seed)),
        ("non-text action", lambda: _check_non_text(env_id, seed)),
        ("expert rollouts", lambda: _check_expert(env_id, seed, episodes)),
    ]


def _episode(
    env: gym.Env, agent: Any, seed: int | None, obs_info: tuple | None = None
) -> list[tuple]:
    """Plays one episode (from a reset, or on from ``obs_info``) and records every step."""
    obs, info = env.reset(seed=seed) if obs_info is None else obs_info
    record: list[tuple] = [(obs["text"], tuple(obs["actions"]))]
    for _ in range(_MAX_EPISODE_STEPS):
        action = agent.act(obs, info, env)
        obs, reward, terminated, truncated, info = env.step(action)
        record.append(
            (
                action,
                obs["text"],
                tuple(obs["actions"]),
                reward,
                terminated,
                truncated,
                info["success"],
            )
        )
        if terminated or truncated:
            return record
    raise AssertionError(f"episode did not end within {_MAX_EPISODE_STEPS} steps")


def _check_make(env_id: str) -> str:
    env = catalog.make(env_id)
    try:
        return f"{type(env.unwrapped).__name__}: {env.unwrapped.action_space}"
    finally:
        env.close()


def _check_gymnasium(env_id: str) -> str:
    env = catalog.make(env_id)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
    if caught:
        return f"passed with {len(caught)} warning(s): " + "; ".join(
            str(w.message) for w in caught[:3]
        )
    return "passed"


def _check_determinism(env_id: str, seed: int) -> str:
    envs = [catalog.make(env_id), catalog.make(env_id)]
    try:
        for ep in range(3):
            a = _episode(envs[0], RandomAgent(seed + ep), seed + ep)
            b = _episode(envs[1], RandomAgent(seed + ep), seed + ep)
            if a != b:
                raise AssertionError(
                    f"same seed {seed + ep}, different episodes at {_first_difference(a, b)}"
                )
    finally:
        for env in envs:
            env.close()
    return "3 seeded episodes identical"


def _check_pickle(env_id: str, seed: int) -> str:
    env = catalog.make(env_id)
    try:
        agent = RandomAgent(seed)
        obs, info = env.reset(seed=seed)
        steps = 0
        for _ in range(2):  # walk into the episode, leaving it unfinished
            action = agent.act(obs, info, env)
            nxt = env.step(action)
            if nxt[2] or nxt[3]:
                obs, info = env.reset(seed=seed)
                steps = 0
                break
            obs, info, steps = nxt[0], nxt[4], steps + 1
        clone = pickle.loads(pickle.dumps(env))
        agent_copy = copy.deepcopy(agent)
        a = _episode(env, agent, None, (obs, info))
        b = _episode(clone, agent_copy, None, (obs, info))
    finally:
        env.close()
    if a != b:
        raise AssertionError(
            f"unpickled env diverged after {steps} steps at {_first_difference(a, b)}"
        )
    return f"pickled after {steps} steps; the copy continued identically for {len(a) - 1} steps"


def _check_rollouts(
    env_id: str, seed: int, episodes: int, agent_factory: Callable[[int], Any]
) -> str:
    env = catalog.make(env_id)
    successes, lengths = 0, []
    try:
        space = env.observation_space
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep)
            agent = agent_factory(seed + ep)
            if obs not in space:
                raise AssertionError(
                    f"episode {ep}: reset observation not in observation_space: {obs!r:.200}"
                )
            for t in range(1, _MAX_EPISODE_STEPS + 1):
                action = agent.act(obs, info, env)
                obs, reward, terminated, truncated, info = env.step(action)
                _check_step(f"episode {ep} step {t}", obs, space, reward)
                _check_success(f"episode {ep} step {t}", info)
                if terminated or truncated:
                    break
            else:
                raise AssertionError(f"episode {ep} did not end within {_MAX_EPISODE_STEPS} steps")
            successes += info["success"]
            lengths.append(t)
    finally:
        env.close()
    return f"{episodes} episodes, success rate {successes / episodes:.2f}, mean length {sum(lengths) / episodes:.1f}"


def _check_malformed(env_id: str, seed: int) -> str:
    env = catalog.make(env_id)
    try:
        for label, action in MALFORMED_ACTIONS.items():
            env.reset(seed=seed)
            obs, reward, terminated, truncated, info = env.step(action)
            _check_step(f"action {label!r}", obs, env.observation_space, reward)
    finally:
        env.close()
    return "answered " + ", ".join(MALFORMED_ACTIONS)


def _check_non_text(env_id: str, seed: int) -> str:
    env = catalog.make(env_id)
    try:
        env.reset(seed=seed)
        return _expect_invalid_action(lambda: env.step(3))
    finally:
        env.close()


def _check_expert(env_id: str, seed: int, episodes: int) -> str:
    try:
        return _check_rollouts(env_id, seed, episodes, lambda _seed: ExpertAgent())
    except NotImplementedError:
        return "skipped: the env has no expert_action (optional)"


# --- multi-agent (PettingZoo) envs -----------------------------------------------------------


def _multi_agent_checks(
    env_id: str, seed: int, episodes: int, parallel: bool
) -> list[tuple[str, Callable[[], str]]]:
    from lmrl.envs.multiagent import ExpertMultiAgent, RandomMultiAgent

    return [
        ("make", lambda: _ma_make(env_id)),
        ("pettingzoo api test", lambda: _ma_api(env_id, parallel)),
        ("determinism", lambda: _ma_seeding(env_id, parallel)),
        ("pickle mid-episode", lambda: _ma_pickle(env_id, seed)),
        ("random rollouts", lambda: _ma_rollouts(env_id, seed, episodes, RandomMultiAgent(seed))),
        ("malformed action text", lambda: _ma_malformed(env_id, seed, parallel)),
        (
            "non-text action",
            lambda: _expect_invalid_action(lambda: _ma_first_move(env_id, seed, 3, parallel)),
        ),
        ("expert rollouts", lambda: _ma_rollouts(env_id, seed, episodes, ExpertMultiAgent())),
    ]


def _ma_make(env_id: str) -> str:
    env = catalog.make(env_id)
    try:
        return f"{catalog.env_kind(env_id)} env, agents {', '.join(env.possible_agents)}"
    finally:
        env.close()


def _ma_api(env_id: str, parallel: bool) -> str:
    from pettingzoo.test import api_test, parallel_api_test

    from lmrl.envs.multiagent import make_aec

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # "should be Box or Discrete": text spaces are the point
        if parallel:
            parallel_api_test(catalog.make(env_id), num_cycles=100)
            api_test(make_aec(env_id), num_cycles=100)
            return "parallel_api_test and api_test (through parallel_to_aec) passed"
        api_test(make_aec(env_id), num_cycles=100)
    return "api_test passed"


def _ma_seeding(env_id: str, parallel: bool) -> str:
    from pettingzoo.test import parallel_seed_test, seed_test

    from lmrl.envs.multiagent import RandomMultiAgent, make_aec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if parallel:
            parallel_seed_test(lambda: catalog.make(env_id), num_cycles=50)
        seed_test(lambda: make_aec(env_id), num_cycles=50)
    a = run_episodes(env_id, RandomMultiAgent(0), n=3, keep_transcripts=3)
    b = run_episodes(env_id, RandomMultiAgent(0), n=3, keep_transcripts=3)
    if a.transcripts != b.transcripts or a.returns != b.returns:
        raise AssertionError("same seeds and agents, different episodes")
    return "PettingZoo seed test passed; 3 seeded episodes identical"


def _ma_trace(env: Any, agent: Any, moves: int | None = None) -> list[tuple]:
    """Plays on from the env's current state (``moves`` of them, or to the end) and records it."""
    out = []
    for name in env.agent_iter():
        obs, reward, terminated, truncated, info = env.last()
        out.append((name, obs["text"], tuple(obs["actions"]), reward, terminated, truncated))
        env.step(None if terminated or truncated else agent.act(name, obs, info, env))
        if moves is not None and len(out) >= moves:
            break
    return out


def _ma_pickle(env_id: str, seed: int) -> str:
    from lmrl.envs.multiagent import RandomMultiAgent, make_aec

    env = make_aec(env_id)
    env.reset(seed=seed)
    agent = RandomMultiAgent(seed)
    _ma_trace(env, agent, moves=2)
    clone, clone_agent = pickle.loads(pickle.dumps(env)), copy.deepcopy(agent)
    a, b = _ma_trace(env, agent), _ma_trace(clone, clone_agent)
    if a != b:
        raise AssertionError(
            f"the unpickled env diverged from the original at {_first_difference(a, b)}"
        )
    return f"pickled after 2 moves; the copy continued identically for {len(a)} moves"


def _ma_rollouts(env_id: str, seed: int, episodes: int, agent: Any) -> str:
    from lmrl.envs.multiagent import make_aec

    env = make_aec(env_id)
    agents = env.possible_agents
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        for name in env.agent_iter():
            obs, reward, terminated, truncated, info = env.last()
            _check_step(f"episode {ep}, {name}", obs, env.observation_space(name), reward)
            _check_success(f"episode {ep}, {name}", info)
            env.step(None if terminated or truncated else agent.act(name, obs, info, env))
    report = run_episodes(env_id, agent, n=episodes, seed=seed)
    rates = ", ".join(f"{a} {report.success_rate(a):.2f}" for a in agents)
    return f"{episodes} episodes, success rate {rates}"


def _ma_first_move(
    env_id: str, seed: int, action: Any, parallel: bool
) -> list[tuple[str, Any, dict, float]]:
    """Sends ``action`` as the first move (every agent's, for a Parallel env).

    Returns:
        (agent, its observation space, its observation, its reward) for every agent.
    """
    from lmrl.envs.multiagent import make_aec

    if parallel:
        par = catalog.make(env_id)
        par.reset(seed=seed)
        obs, rewards, *_ = par.step({a: action for a in par.agents})
        return [(a, par.observation_space(a), obs[a], rewards[a]) for a in obs]
    env = make_aec(env_id)
    env.reset(seed=seed)
    env.step(action)
    return [(a, env.observation_space(a), env.observe(a), env.rewards[a]) for a in env.agents]


def _ma_malformed(env_id: str, seed: int, parallel: bool) -> str:
    for label, action in MALFORMED_ACTIONS.items():
        for agent, space, obs, reward in _ma_first_move(env_id, seed, action, parallel):
            _check_step(f"action {label!r}, {agent}", obs, space, reward)
    return "answered " + ", ".join(MALFORMED_ACTIONS)
