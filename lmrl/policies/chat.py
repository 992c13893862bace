"""Chat histories as env observations: how a served dialogue policy reads a conversation.

A policy trained on a dialogue env saw observations such as::

    Customer: Hi, I need some help.
    Agent: How can I help you?
    Customer: I would like a refund.

An OpenAI-style chat history is mapped onto exactly that text, so the reply a
served policy gives equals the action it would take in its env for the same
history:

* ``user`` messages become ``"<user label>: <content>"`` lines and
  ``assistant`` messages ``"<assistant label>: <content>"`` lines
  (``Customer`` / ``Agent`` for ``lmrl/CustomerSupport-v0``).
* Content is normalised as the env normalises action text
  (:func:`lmrl.envs.base.clean_action`: printable characters, whitespace
  runs collapsed to one space), and assistant lines are shortened as the env
  shows agent turns (``lmrl/CustomerSupport-v0`` cuts them to 60 characters).
* Only the last ``history`` lines are kept (the env's ``history`` argument),
  then the last :data:`~lmrl.envs.base.MAX_TEXT_CHARS` characters.
* ``system`` and ``developer`` messages are accepted (chat clients send them)
  but not shown to the policy: it was trained on the env's dialogue only.
* In choose mode, the admissible actions are the env's own when they are the
  same in every state (all eight utterances of ``lmrl/CustomerSupport-v0``);
  otherwise the caller must list them.

The format for an env comes from, in order: a ``"chat"`` mapping in the
policy's ``lmrl.json`` (keys of :class:`DialogueFormat`), the table
:data:`DIALOGUE_FORMATS` (extend it with :func:`register_dialogue_format`), or
``User`` / ``Assistant`` labels.

Example:
    >>> template = ChatTemplate.from_meta({"env_id": "lmrl/CustomerSupport-v0"})
    >>> template.render([("user", "Hi, I need some help.")])
    'Customer: Hi, I need some help.'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from lmrl.envs.base import MAX_TEXT_CHARS, clean_action

#: Roles a chat message may have.
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant")
#: Roles whose messages are accepted but not shown to the policy.
HIDDEN_ROLES: frozenset[str] = frozenset({"system", "developer"})


@dataclass(frozen=True)
class DialogueFormat:
    """How an env writes its dialogue lines.

    Attributes:
        user: Speaker label of ``user`` messages (the env's other party).
        assistant: Speaker label of ``assistant`` messages (the policy).
        history: Lines of dialogue the observation keeps (``None``: all, or
            the env's own ``history`` attribute when it has one).
        max_assistant_chars: Assistant lines longer than this are cut to
            ``max_assistant_chars - 3`` characters plus ``"..."``, as the env
            shows them (``None``: never cut).
    """

    user: str = "User"
    assistant: str = "Assistant"
    history: int | None = None
    max_assistant_chars: int | None = None


#: Dialogue formats of the built-in dialogue envs, by env id.
DIALOGUE_FORMATS: dict[str, DialogueFormat] = {
    "lmrl/CustomerSupport-v0": DialogueFormat(
        user="Customer", assistant="Agent", max_assistant_chars=60
    ),
}


def register_dialogue_format(env_id: str, fmt: DialogueFormat) -> None:
    """Declares how a (plugin) env writes its dialogue, for serving its policies."""
    DIALOGUE_FORMATS[env_id] = fmt


def static_actions(
    env_id: str, env_kwargs: dict[str, Any] | None = None, episodes: int = 3
) -> tuple[str, ...] | None:
    """The env's admissible actions if they are the same in every state seen, else ``None``.

    Plays a few short random episodes and compares the admissible lists.

    Args:
        env_id: A registered env id.
        env_kwargs: Constructor arguments.
        episodes: Random episodes to look at.
    """
    import lmrl.envs
    from lmrl.envs.agents import RandomAgent

    env = lmrl.envs.make(env_id, **(env_kwargs or {}))
    seen: set[tuple[str, ...]] = set()
    try:
        agent = RandomAgent(seed=0)
        for episode in range(episodes):
            obs, info = env.reset(seed=episode)
            for _ in range(20):
                seen.add(tuple(obs.get("actions", ())))
                if len(seen) > 1:
                    return None
                obs, _, terminated, truncated, info = env.step(agent.act(obs, info, env))
                if terminated or truncated:
                    break
    finally:
        env.close()
    (actions,) = seen
    return actions or None


def _env_history(env_id: str, env_kwargs: dict[str, Any]) -> int | None:
    import lmrl.envs

    env = lmrl.envs.make(env_id, **env_kwargs)
    try:
        history = getattr(env.unwrapped, "history", None)
    finally:
        env.close()
    return int(history) if isinstance(history, int) else None


@dataclass(frozen=True)
class ChatTemplate:
    """A dialogue format plus the default admissible actions of a policy's env.

    Attributes:
        format: Labels, history window and line shortening.
        actions: Admissible actions used when a request lists none (choose mode).
    """

    format: DialogueFormat = DialogueFormat()
    actions: tuple[str, ...] | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ChatTemplate:
        """The template for an exported policy, from its ``lmrl.json`` contents.

        Args:
            meta: ``lmrl.json`` as a dict (``env_id``, ``env_kwargs``, optional ``chat``).
        """
        env_id = meta.get("env_id")
        env_kwargs = dict(meta.get("env_kwargs") or {})
        fmt = DIALOGUE_FORMATS.get(env_id or "", DialogueFormat())
        names = {f.name for f in fields(DialogueFormat)}
        fmt = replace(fmt, **{k: v for k, v in dict(meta.get("chat") or {}).items() if k in names})
        actions = None
        if env_id:
            import lmrl.envs

            if env_id in lmrl.envs.list_envs():
                if fmt.history is None:
                    fmt = replace(fmt, history=_env_history(env_id, env_kwargs))
                actions = static_actions(env_id, env_kwargs)
        return cls(fmt, actions)

    def line(self, role: str, content: str) -> str | None:
        """One message as the env would show it (``None`` for hidden roles)."""
        if role in HIDDEN_ROLES:
            return None
        if role == "assistant":
            text = clean_action(content)  # exactly what the env does to action text
            cut = self.format.max_assistant_chars
            if cut is not None and len(text) > cut:
                text = text[: cut - 3] + "..."
            return f"{self.format.assistant}: {text}"
        if role == "user":
            return f"{self.format.user}: {clean_action(content, MAX_TEXT_CHARS)}"
        raise ValueError(f"unknown chat role {role!r}; use one of {', '.join(ROLES)}")

    def render(self, messages: Sequence[tuple[str, str]]) -> str:
        """The observation text for a chat history of ``(role, content)`` pairs."""
        lines = [
            line for role, content in messages if (line := self.line(role, content)) is not None
        ]
        if self.format.history is not None:
            lines = lines[-self.format.history :] if self.format.history > 0 else []
        return "\n".join(lines)[-MAX_TEXT_CHARS:]

    def observation(
        self,
        messages: Sequence[tuple[str, str]],
        actions: Sequence[str] | None = None,
        multi_turn: bool = False,
    ) -> dict[str, Any]:
        """The env observation ``{"text", "actions"}`` the policy acts on for this history.

        Args:
            messages: ``(role, content)`` pairs, oldest first.
            actions: Admissible actions; ``None`` uses the env's static ones (if any).
            multi_turn: For a multi-turn chat policy: ``text`` is the user lines since
                the last assistant message, and ``"history"`` holds the earlier
                ``(user lines, assistant reply)`` turns -- what the env's
                ``info["message"]`` and the policy's actions were in training.
        """
        chosen = tuple(actions) if actions is not None else (self.actions or ())
        if not multi_turn:
            return {"text": self.render(messages), "actions": chosen}
        history: list[tuple[str, str]] = []
        pending: list[str] = []
        for role, content in messages:
            if role in HIDDEN_ROLES:
                continue
            if role == "assistant":
                history.append(("\n".join(pending), clean_action(content)))
                pending = []
            elif (line := self.line(role, content)) is not None:
                pending.append(line)
        return {"text": "\n".join(pending), "actions": chosen, "history": tuple(history)}


def messages_from_text(text: str, fmt: DialogueFormat) -> list[tuple[str, str]]:
    """Splits an env's dialogue text back into ``(role, content)`` pairs.

    The inverse of :meth:`ChatTemplate.render` for lines that carry a
    speaker label; other lines are skipped. Handy for driving a served policy
    with an env (the env's observation becomes the chat history).
    """
    out = []
    for line in text.splitlines():
        for role, label in (("user", fmt.user), ("assistant", fmt.assistant)):
            if line.startswith(f"{label}: ") or line == f"{label}:":
                out.append((role, line[len(label) + 1 :].strip()))
                break
    return out
