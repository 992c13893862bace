"""Adapters for the field's text-env suites, each behind an optional extra.

| suite | ids | extra | module |
|---|---|---|---|
| TextWorld-Express | ``twx/CookingWorld-v0``, ``twx/Coin-v0``, ... | ``twx`` | :mod:`.textworld_express` |
| BabyAI-Text (GLAM) | ``babyai/GoToLocal-v0``, ... | ``babyai`` | :mod:`.babyai_text` |
| TextArena | ``textarena/Nim-v0``, ``textarena/FrozenLake-v0``, ... | ``textarena`` | :mod:`.textarena` |
| reasoning-gym | ``rg/leg_counting-v0``, ... | ``reasoning-gym`` | :mod:`.reasoning_gym` |

Each suite module has a ``register_envs()`` function, named in lmrl's own
``[project.entry-points."lmrl.envs"]``, so ``import lmrl`` registers the ids.
Registration never imports the suite's package (ids and defaults are static
in each module); when the package (or Java, for TextWorld-Express) is
missing, the ids are listed as unavailable with the install command, and
making one raises a one-line :class:`~lmrl.errors.UnknownEnvError`.

Example:
    >>> import lmrl
    >>> env = lmrl.envs.make("twx/Coin-v0", game_params="numLocations=3,includeDoors=0")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterable

#: Fraction of a long bad action quoted back in an explanation.
_QUOTE_CHARS = 20


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The names among ``modules`` that cannot be imported (checked without importing them)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def java_missing() -> bool:
    """Whether no ``java`` executable is on ``PATH`` (TextWorld-Express runs on the JVM)."""
    return shutil.which("java") is None


def install_hint(extra: str) -> str:
    """The pip command that installs an lmrl extra."""
    return f"pip install 'lmrl[{extra}]'"


def register_suite(
    env_ids: dict[str, tuple[str, dict]],
    *,
    suite: str,
    extra: str,
    modules: Iterable[str],
    also_missing: str | None = None,
) -> None:
    """Registers a suite's ids, or lists them as unavailable when its packages are missing.

    Already-registered ids are skipped, so calling this again is harmless.

    Args:
        env_ids: ``id -> (entry point, default kwargs)``.
        suite: The suite's name, for the message.
        extra: The lmrl extra that installs it.
        modules: Import names the suite needs.
        also_missing: A further unmet requirement (e.g. Java), as a sentence with its fix.
    """
    from lmrl.envs import catalog

    missing = missing_modules(modules)
    reason = None
    if missing:
        reason = (
            f"needs the {suite} suite ({', '.join(missing)} not installed): {install_hint(extra)}"
        )
    elif also_missing:
        reason = f"needs {also_missing}"
    for env_id, (entry_point, kwargs) in env_ids.items():
        if env_id in catalog.list_envs(include_unavailable=True) and reason is None:
            continue
        if reason is not None:
            catalog.register_unavailable(env_id, f"`{env_id}` {reason}")
        else:
            catalog.register(env_id, entry_point, kwargs=kwargs)


def quote(text: str) -> str:
    """``text`` as quoted back to the agent: shortened, empty text named as such."""
    if not text:
        return "an empty action"
    shown = text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."
    return f"'{shown}'"


def normalise(text: str) -> str:
    """Lower case with single spaces: how action text is matched to an admissible action."""
    return " ".join(text.lower().split())


def match_admissible(text: str, admissible: Iterable[str]) -> str | None:
    """The admissible action that ``text`` names (case and spacing ignored), or ``None``."""
    want = normalise(text)
    for action in admissible:
        if normalise(action) == want:
            return action
    return None
