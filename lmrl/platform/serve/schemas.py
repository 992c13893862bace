"""Request and response bodies of the OpenAI-compatible API (pydantic).

Requests are validated strictly: a wrong type is an error (``"5"`` is not a
number), and an unknown field is an error, as in OpenAI's API. Fields that
OpenAI clients commonly send but a trained policy cannot honour are accepted
only with their neutral value (``presence_penalty: 0``, ``logprobs: false``).

Extensions beyond OpenAI's API:

* ``admissible_actions`` (chat and completions): the actions a choose-mode
  policy picks from; by default those of the policy's env.
* ``POST /v1/act`` (:class:`ActRequest`): one env step's action and its log-probability.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmrl.policies.chat import ROLES

#: Most stop sequences per request, as OpenAI allows.
MAX_STOP = 4
#: Longest stop sequence or admissible action, in characters.
MAX_ITEM_CHARS = 512


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(_Strict):
    """A text part of a message's content (``{"type": "text", "text": ...}``)."""

    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    """One chat message."""

    role: str
    content: str | list[TextPart]
    name: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            from lmrl.errors import did_you_mean

            raise ValueError(f"must be one of {', '.join(map(repr, ROLES))}{did_you_mean(role, ROLES)}")
        return role

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Strict):
    """``stream_options``: ``include_usage`` adds a final chunk with token counts."""

    include_usage: bool = False


class _Sampling(_Strict):
    """Sampling fields shared by chat and text completions."""

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: float | None = Field(None, ge=0, le=0)
    frequency_penalty: float | None = Field(None, ge=0, le=0)
    admissible_actions: list[str] | None = Field(None, min_length=1)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> str | list[str] | None:
        items = [stop] if isinstance(stop, str) else (stop or [])
        if len(items) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed, got {len(items)}")
        if any(len(s) > MAX_ITEM_CHARS for s in items):
            raise ValueError(f"a stop sequence may have at most {MAX_ITEM_CHARS} characters")
        return stop

    @field_validator("admissible_actions")
    @classmethod
    def _short_actions(cls, actions: list[str] | None) -> list[str] | None:
        if actions and any(len(a) > MAX_ITEM_CHARS for a in actions):
            raise ValueError(f"an admissible action may have at most {MAX_ITEM_CHARS} characters")
        return actions

    def stop_list(self) -> tuple[str, ...]:
        """The stop sequences as a tuple (empty strings dropped)."""
        items = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return tuple(s for s in items if s)


class ChatCompletionRequest(_Sampling):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("token log-probabilities are not returned here; POST /v1/act returns the action's log-probability")
        return value


class CompletionRequest(_Sampling):
    """``POST /v1/completions``: ``prompt`` is observation text (one or a list)."""

    prompt: str | list[str]
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)
    logprobs: int | None = Field(None, ge=0, le=0)

    @field_validator("prompt")
    @classmethod
    def _some_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and not prompt:
            raise ValueError("give at least one prompt")
        return prompt

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("echo is not supported")
        return value

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("suffix (insertion) is not supported")
        return value

    def prompts(self) -> list[str]:
        """The prompts as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class ActRequest(_Strict):
    """``POST /v1/act``: the policy's action for one env observation.

    Attributes:
        observation: The observation text, as the env shows it.
        admissible_actions: Choose mode: the actions to pick from (default:
            the env's fixed list, when it has one). Ignored in generate mode.
        greedy: Argmax (default) or sample at the policy's temperature.
        seed: Seed for sampling.
        model: The served model's id (optional).
    """

    observation: str
    admissible_actions: list[str] | None = Field(None, min_length=1)
    greedy: bool = True
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    model: str | None = None

    @field_validator("admissible_actions")
    @classmethod
    def _short_actions(cls, actions: list[str] | None) -> list[str] | None:
        if actions and any(len(a) > MAX_ITEM_CHARS for a in actions):
            raise ValueError(f"an admissible action may have at most {MAX_ITEM_CHARS} characters")
        return actions


# --- responses ---------------------------------------------------------------------------


class Usage(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    """The assistant message of a chat choice."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One chat completion choice."""

    index: int
    message: ResponseMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    """``chat.completion`` response."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str


class Delta(BaseModel):
    """The increment of a streamed chat choice."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """One choice of a ``chat.completion.chunk``."""

    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """``chat.completion.chunk``: one server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    system_fingerprint: str
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    """One text completion choice (``finish_reason`` is ``None`` in streamed events but the last)."""

    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class Completion(BaseModel):
    """``text_completion`` response (also each streamed event of one)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lmrl"
    env_id: str | None = None
    action_mode: str
    context_length: int | None = None


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ActResponse(BaseModel):
    """``POST /v1/act`` response."""

    action: str
    logprob: float
    action_index: int | None = None
    action_mode: str
    model: str
    prompt_tokens: int
