"""Health checks for a catalog env: what ``lmrl envs check ENV_ID`` runs.

Each check returns a :class:`CheckResult`; a failing check never stops the
others. The checks: the env can be made with text spaces, Gymnasium's
``check_env`` passes, the same seeds give the same episodes, a pickled env
continues identically, random rollouts stay inside the observation space
with finite rewards, malformed action text is answered (never raised on),
and a non-text action raises :class:`~lmrl.errors.InvalidActionError`.

Example:
    >>> import lmrl
    >>> from lmrl.envs.checks import check_env_id
    >>> all(r.ok for r in check_env_id("lmrl/Maze-v0", episodes=5))
    True
"""

from __future__ import annotations

import copy
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


def _first_difference(a: list[tuple], b: list[tuple]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"step {i}: {x!r} != {y!r}"
    return f"lengths {len(a)} != {len(b)}"


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
                if obs not in space:
                    raise AssertionError(
                        f"episode {ep} step {t}: observation not in observation_space: {obs!r:.200}"
                    )
                if not math.isfinite(reward):
                    raise AssertionError(f"episode {ep} step {t}: reward {reward!r} is not finite")
                if not isinstance(info.get("success"), bool):
                    raise AssertionError(
                        f"episode {ep} step {t}: info['success'] must be a bool, got {info.get('success')!r}"
                    )
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
            if obs not in env.observation_space:
                raise AssertionError(
                    f"action {label!r}: observation not in observation_space: {obs!r:.200}"
                )
            if not math.isfinite(reward):
                raise AssertionError(f"action {label!r}: reward {reward!r} is not finite")
    finally:
        env.close()
    return "answered " + ", ".join(MALFORMED_ACTIONS)


def _check_non_text(env_id: str, seed: int) -> str:
    env = catalog.make(env_id)
    try:
        env.reset(seed=seed)
        try:
            env.step(3)
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
    finally:
        env.close()
    raise AssertionError("step(3) did not raise InvalidActionError")


def check_env_id(env_id: str, seed: int = 0, episodes: int = 20) -> list[CheckResult]:
    """Runs every check on a catalog env.

    Args:
        env_id: Catalog id, for example ``"lmrl/Maze-v0"``.
        seed: Base seed of the episodes.
        episodes: Episodes of random (and of expert) rollouts.

    Returns:
        One :class:`CheckResult` per check. If the env cannot be made, only that one.

    Raises:
        UnknownEnvError: ``env_id`` is not in the catalog.
    """
    catalog.env_info(env_id)  # UnknownEnvError with a suggestion, before anything else
    checks: list[tuple[str, Callable[[], str]]] = [
        ("make", lambda: _check_make(env_id)),
        ("gymnasium check_env", lambda: _check_gymnasium(env_id)),
        ("determinism", lambda: _check_determinism(env_id, seed)),
        ("pickle mid-episode", lambda: _check_pickle(env_id, seed)),
        ("random rollouts", lambda: _check_rollouts(env_id, seed, episodes, RandomAgent)),
        ("malformed action text", lambda: _check_malformed(env_id, seed)),
        ("non-text action", lambda: _check_non_text(env_id, seed)),
        ("expert rollouts", lambda: _check_expert(env_id, seed, episodes)),
    ]
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


def _check_expert(env_id: str, seed: int, episodes: int) -> str:
    try:
        return _check_rollouts(env_id, seed, episodes, lambda _seed: ExpertAgent())
    except NotImplementedError:
        return "skipped: the env has no expert_action (optional)"
