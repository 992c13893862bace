"""Batched decoding with per-request sampling parameters (what a served policy runs).

:func:`decode` takes many requests at once, each with its own ``n``,
``max_tokens``, ``temperature``, ``top_p``, ``stop`` and ``seed``, and
answers all of them with one batched forward pass (choose mode: one
candidate-scoring pass) or one batched KV-cache generation (generate mode:
:func:`lmrl.policies.sampler.sample`, the loop the env runners act with).

Greedy decoding (``temperature=0``) picks exactly what
:meth:`lmrl.policies.text_policy.TextPolicy.act` picks with ``greedy=True``:
the same prompt encoding, candidate scores and EOS masking. Sampling draws
each request's choices from its own ``torch.Generator`` (seeded by ``seed``),
so a seeded request gives the same text whatever else shares its batch.

The reported log-probability of a completion is the policy's own: the
log-probability of the whole action (generate: every generated token, EOS
included; choose: the chosen candidate) under the policy at its trained
temperature, before ``top_p``, ``max_tokens`` and ``stop`` are applied. It
is the ``ACTION_LOGP`` RLlib records when the policy acts in its env.

Example:
    >>> policy = TextPolicy.from_pretrained("runs/customer-support-choose/export")
    >>> (result,) = decode(policy, [DecodeRequest("Customer: Hi, I need some help.", policy_actions)])
    >>> result.completions[0].text
    'How can I help you?'
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from lmrl.policies import sampler
from lmrl.policies.sampler import RowSampling

if TYPE_CHECKING:
    from lmrl.policies.text_policy import TextPolicy


#: Temperatures below this are greedy: sampling's limit, and logits / T would overflow.
GREEDY_BELOW = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    """How to draw completions for one request.

    Attributes:
        n: Completions to draw.
        max_tokens: Token limit of a completion. ``None``: the policy's
            ``max_new_tokens`` in generate mode, the whole action in choose mode.
        temperature: ``0`` (or below :data:`GREEDY_BELOW`) is greedy; ``None``
            samples at the policy's temperature.
        top_p: Nucleus sampling: draw only from the smallest set of tokens
            (choose mode: actions) whose probability reaches ``top_p``.
        stop: Strings that end a completion (the text is cut before them).
        seed: Seed of the request's random generator (``None``: fresh entropy).
    """

    n: int = 1
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """True when the completions are argmax picks (``temperature`` below :data:`GREEDY_BELOW`)."""
        return self.temperature is not None and self.temperature < GREEDY_BELOW


@dataclass(frozen=True)
class DecodeRequest:
    """One observation to act on.

    Attributes:
        text: The observation text (before the policy's prompt format).
        actions: Admissible actions (choose mode).
        params: Sampling parameters.
        history: Multi-turn chat policies: the earlier ``(observation, action)``
            turns, oldest first, rendered as user/assistant turns before ``text``.
    """

    text: str
    actions: tuple[str, ...] = ()
    params: SamplingParams = field(default_factory=SamplingParams)
    history: tuple[tuple[str, str], ...] = ()

    def observation(self) -> dict:
        """The text observation the policy encodes (``{"text", "actions", "history"}``)."""
        return {"text": self.text, "actions": self.actions, "history": self.history}

    @property
    def rows(self) -> int:
        """Batch rows this request occupies (its ``n``)."""
        return self.params.n


@dataclass(frozen=True)
class Completion:
    """One drawn completion.

    Attributes:
        text: The completion text, after ``max_tokens`` and ``stop``.
        finish_reason: ``"stop"`` (EOS, a whole action, or a stop string) or ``"length"``.
        logprob: Log-probability of the drawn action under the policy (see module docs).
        completion_tokens: Tokens in ``text``'s action before EOS.
        action_index: Choose mode: index of the picked admissible action.
        token_ids: Generate mode: the drawn token ids, up to the row's token
            limit (EOS repeats after the first EOS), as teacher forcing scores them.
    """

    text: str
    finish_reason: str
    logprob: float
    completion_tokens: int
    action_index: int | None = None
    token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class DecodeResult:
    """The answer to one :class:`DecodeRequest`.

    Attributes:
        completions: ``n`` completions.
        prompt_tokens: Prompt tokens the policy read (after its window).
        batch_rows: Rows in the batch this request was decoded in.
    """

    completions: list[Completion]
    prompt_tokens: int
    batch_rows: int = 1


def prompt_token_count(tokenizer, prompt_format: str, text: str) -> int:
    """Tokens of the formatted prompt, before the policy's ``max_prompt_tokens`` window.

    Args:
        tokenizer: The policy's tokenizer.
        prompt_format: The policy's prompt format (``"{text}\\nAction:"``).
        text: The observation text.
    """
    return len(tokenizer(prompt_format.format(text=text), add_special_tokens=False)["input_ids"])


def context_length(config) -> int | None:
    """The model's context length (position embeddings), if its HF config says.

    Args:
        config: A ``transformers`` config (``lm.config`` or ``AutoConfig.from_pretrained``).
    """
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _generators(requests: list[DecodeRequest]) -> list[torch.Generator]:
    return [
        torch.Generator().manual_seed(
            r.params.seed if r.params.seed is not None else secrets.randbits(63)
        )
        for r in requests
    ]


def _cut(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def _row_sampling(
    policy: TextPolicy, requests: list[DecodeRequest], row_request: list[int]
) -> RowSampling:
    """Each row's draw settings from its request; a request's rows share its generator."""
    params = [requests[i].params for i in row_request]
    generators = _generators(requests)
    return RowSampling(
        greedy=torch.tensor([p.greedy for p in params]),
        temperature=torch.tensor(
            [
                policy.temperature if p.temperature is None or p.greedy else float(p.temperature)
                for p in params
            ]
        ),
        top_p=torch.tensor([float(p.top_p) for p in params]),
        generators=tuple(generators[i] for i in row_request),
    )


@torch.no_grad()
def decode(policy: TextPolicy, requests: list[DecodeRequest]) -> list[DecodeResult]:
    """Answers a batch of requests with one batched pass of the policy.

    Args:
        policy: The policy (choose or generate mode).
        requests: Validated requests (choose mode: each lists at least one action).

    Returns:
        One result per request, in order.
    """
    if not requests:
        return []
    if policy.action_mode == "choose":
        return _decode_choose(policy, requests)
    return _decode_generate(policy, requests)


def _decode_choose(policy: TextPolicy, requests: list[DecodeRequest]) -> list[DecodeResult]:
    tok = policy.tokenizer
    b = policy.encode([r.observation() for r in requests])
    logits = policy.choice_logits(b)  # (B, K), at the policy's temperature, ranked as in act()
    valid = b["action_mask"] > 0
    policy_logp = F.log_softmax(logits, -1)  # (B, K)
    masked_scores = torch.where(
        valid, logits * policy.temperature, float("-inf")
    )  # (B, K): temperature 1
    # One row per choice: the n choices of a request share its scores.
    row_request = [i for i, r in enumerate(requests) for _ in range(r.rows)]
    picks = _row_sampling(policy, requests, row_request).draw(masked_scores[row_request])
    results: list[list[Completion]] = [[] for _ in requests]
    for row, i in enumerate(row_request):
        r, index = requests[i], int(picks[row])
        text = r.actions[index]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        finish = "stop"
        if r.params.max_tokens is not None and len(ids) > r.params.max_tokens:
            ids = ids[: r.params.max_tokens]
            text, finish = tok.decode(ids, skip_special_tokens=True).strip(), "length"
        text, stopped = _cut(text, r.params.stop)
        if stopped:
            finish = "stop"
            ids = tok(text, add_special_tokens=False)["input_ids"]
        results[i].append(Completion(text, finish, float(policy_logp[i, index]), len(ids), index))
    prompt_tokens = b["prompt_mask"].sum(-1).tolist()
    rows = len(row_request)
    return [DecodeResult(c, int(p), rows) for c, p in zip(results, prompt_tokens, strict=True)]


def _decode_generate(policy: TextPolicy, requests: list[DecodeRequest]) -> list[DecodeResult]:
    codec = policy.codec
    eos = codec.eos_id
    row_request = [i for i, r in enumerate(requests) for _ in range(r.rows)]
    limits = [requests[i].params.max_tokens or policy.adapter.max_new_tokens for i in row_request]
    encoded = [codec.encode_observation(requests[i].observation()) for i in row_request]
    prompt = torch.as_tensor(np.stack([e["prompt_ids"] for e in encoded]))  # (B, P)
    pmask = torch.as_tensor(np.stack([e["prompt_mask"] for e in encoded]))
    prompt_tokens = pmask.sum(-1).tolist()
    rows = _row_sampling(policy, requests, row_request)
    drawn = sampler.sample(
        policy.lm, prompt, pmask, eos, policy.temperature, rows, torch.tensor(limits)
    )
    tokens = drawn.tokens.numpy()  # (B, T): EOS from the first EOS on and past each row's limit
    logprob = drawn.token_logp.sum(-1)  # (B,): the policy's, 0 past the first EOS and the limit
    results: list[list[Completion]] = [[] for _ in requests]
    for row, i in enumerate(row_request):
        drawn_ids = tokens[row, : limits[row]].tolist()
        ids = drawn_ids[: drawn_ids.index(eos)] if eos in drawn_ids else drawn_ids
        text, stopped = _cut(codec.decode_action(ids), requests[i].params.stop)
        finish = "stop" if stopped or bool(drawn.eos[row]) else "length"
        count = (
            len(policy.tokenizer(text, add_special_tokens=False)["input_ids"])
            if stopped
            else len(ids)
        )
        results[i].append(
            Completion(text, finish, float(logprob[row]), count, None, tuple(drawn_ids))
        )
    first_row = {i: row for row, i in reversed(list(enumerate(row_request)))}
    n_rows = len(row_request)
    return [
        DecodeResult(c, int(prompt_tokens[first_row[i]]), n_rows) for i, c in enumerate(results)
    ]
