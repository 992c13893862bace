"""The one KV-cache sampler: what the env runners act with and what Serve answers with.

:func:`sample` draws token sequences for a whole batch with the KV cache,
each row by its own settings (:class:`RowSampling`): greedy, or a draw at its
temperature and ``top_p`` from its own ``torch.Generator``, up to its own
token limit. Training is the case where every row samples at the policy's
temperature, without ``top_p``, for the policy's ``max_new_tokens``, from one
generator; serving sets each request's rows from its parameters. Both go
through this one loop, so the served reply is the action the policy takes in
its env (same prompt, temperature and seed: same ids, same log-probs).

Whatever a row's settings, the log-prob it records is the policy's: each
drawn token under the policy's logits at its trained temperature, masked
after EOS as :func:`lmrl.policies.lm_ops.teacher_force` masks them, so the
learner's recomputation gives the same number. Only these per-token log-probs
are kept, not the (B, T, V) logits.

Example:
    >>> rows = RowSampling.uniform(len(prompt), temperature=0.7, generator=torch.Generator().manual_seed(0))
    >>> drawn = sample(lm, prompt, pmask, eos_id, 0.7, rows, max_tokens=6)
    >>> drawn.tokens.shape, drawn.token_logp.shape
    (torch.Size([8, 6]), torch.Size([8, 6]))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lmrl.policies import lm_ops


def top_p_filter(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Sets logits outside each row's nucleus to ``-inf``.

    Args:
        logits: (B, V) logits.
        top_p: (B,) probability mass to keep; the most likely entry is always kept.
    """
    sorted_logits, order = logits.sort(-1, descending=True)  # (B, V)
    probs = F.softmax(sorted_logits, -1)
    # Outside: the mass before this entry already suffices.
    outside = (probs.cumsum(-1) - probs) >= top_p.unsqueeze(-1)
    outside &= (top_p < 1).unsqueeze(-1)  # top_p=1 keeps everything (no rounding at the tail)
    sorted_logits = sorted_logits.masked_fill(outside, float("-inf"))
    return torch.empty_like(logits).scatter(-1, order, sorted_logits)


@dataclass
class _Group:
    """Sampled rows that share one generator: they draw from it together, in row order."""

    rows: torch.Tensor  # (R,) row indices
    temperature: torch.Tensor  # (R, 1)
    top_p: torch.Tensor | None  # (R,); None when every row keeps the whole distribution
    generator: torch.Generator | None


@dataclass(eq=False)
class RowSampling:
    """How each row of a batch picks its next token (or, in choose mode, its action).

    Attributes:
        greedy: (B,) bool: the row takes the argmax and draws nothing.
        temperature: (B,) temperature of the row's draw (greedy rows ignore it).
        top_p: (B,) nucleus mass of the row's draw; 1 keeps every token.
        generators: One per row; rows that share a generator draw from it
            together, in row order. ``None`` draws from torch's default generator.
    """

    greedy: torch.Tensor
    temperature: torch.Tensor
    top_p: torch.Tensor
    generators: tuple[torch.Generator | None, ...]
    _groups: list[_Group] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        assert len(self.generators) == len(self.greedy) == len(self.temperature) == len(self.top_p)
        by_generator: dict[int, tuple[torch.Generator | None, list[int]]] = {}
        for row, (greedy, generator) in enumerate(
            zip(self.greedy.tolist(), self.generators, strict=True)
        ):
            if not greedy:
                by_generator.setdefault(id(generator), (generator, []))[1].append(row)
        self._groups = []
        for generator, rows in by_generator.values():
            index = torch.tensor(rows, device=self.greedy.device)
            top_p = self.top_p[index]
            nucleus = top_p if bool((top_p < 1).any()) else None  # no sort when nothing is cut
            self._groups.append(
                _Group(index, self.temperature[index].unsqueeze(-1), nucleus, generator)
            )

    @classmethod
    def uniform(
        cls,
        rows: int,
        temperature: float,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> RowSampling:
        """Every row alike, as the policy acts in its env: ``temperature``, no ``top_p``, one generator.

        Args:
            rows: Batch rows.
            temperature: Temperature of every draw.
            greedy: Argmax in every row instead.
            generator: The generator every row draws from (``None``: torch's default).
        """
        return cls(
            torch.full((rows,), greedy),
            torch.full((rows,), float(temperature)),
            torch.ones(rows),
            (generator,) * rows,
        )

    def to(self, device: torch.device | str) -> RowSampling:
        """The same settings with their tensors on ``device`` (the generators stay as they are)."""
        return RowSampling(
            self.greedy.to(device),
            self.temperature.to(device),
            self.top_p.to(device),
            self.generators,
        )

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        """(B,) picks from (B, N) logits at temperature 1: argmax in greedy rows, else each row's draw.

        Args:
            logits: (B, N) logits; ``-inf`` (or a large negative value) marks what cannot be picked.
        """
        picks = logits.argmax(-1)  # (B,)
        for g in self._groups:
            scaled = logits[g.rows] / g.temperature  # (R, N)
            if g.top_p is not None:
                scaled = top_p_filter(scaled, g.top_p)
            picks[g.rows] = torch.multinomial(F.softmax(scaled, -1), 1, generator=g.generator)[:, 0]
        return picks


@dataclass(frozen=True)
class Sampled:
    """What :func:`sample` drew for a batch.

    Attributes:
        tokens: (B, T) drawn ids, T the largest row limit; EOS from a row's
            first EOS on and past its limit (as :func:`lmrl.policies.lm_ops.teacher_force` scores them).
        token_logp: (B, T) log-prob of each drawn id under the policy at its
            temperature; exactly 0 after the first EOS and past the row's limit.
        eos: (B,) True where the row drew EOS within its limit (False: it ran out of tokens).
        features: (B, H) last hidden state at each prompt's last token (the
            value head's input), when asked for.
        logits: (B, T, V) the policy logits each token was scored under, when asked for.
    """

    tokens: torch.Tensor
    token_logp: torch.Tensor
    eos: torch.Tensor
    features: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@torch.no_grad()
def sample(
    lm,
    prompt: torch.Tensor,
    pmask: torch.Tensor,
    eos_id: int,
    temperature: float,
    rows: RowSampling,
    max_tokens: int | torch.Tensor,
    features: bool = False,
    keep_logits: bool = False,
) -> Sampled:
    """Draws a token sequence per row with the KV cache; stops once every row has ended.

    Args:
        lm: A causal LM (see :mod:`lmrl.policies.lm_ops` for what it must accept).
        prompt: (B, P) left-padded prompt ids; pmask: (B, P).
        eos_id: EOS token id.
        temperature: The policy's temperature: the log-probs are scored at it.
        rows: How each row draws (its own temperature, top_p, generator, or greedy).
        max_tokens: Token limit, for every row (int) or per row ((B,) tensor).
        features: Also return the prompt features (asks the prefill for hidden states).
        keep_logits: Also return the (B, T, V) policy logits (memory: T * V floats a row),
            and run every step even once all rows have ended (benchmarks time a fixed length).

    Returns:
        The drawn ids, their policy log-probs and whether each row drew EOS.
    """
    prompt, pmask = lm_ops.trim_prompt(prompt, lm_ops._safe_mask(pmask))
    b, device = prompt.shape[0], prompt.device
    limits = torch.as_tensor(max_tokens, device=device).expand(b)  # (B,)
    rows = rows.to(device)
    out = lm(
        input_ids=prompt,
        attention_mask=pmask,
        position_ids=lm_ops._positions(pmask),
        output_hidden_states=features,
        use_cache=True,
        logits_to_keep=1,
    )
    feats = out.hidden_states[-1][:, -1] if features else None  # (B, H)
    cache, mask = out.cache, pmask
    next_pos = pmask.sum(-1, keepdim=True)  # (B, 1)
    ended = torch.zeros(b, dtype=torch.bool, device=device)  # EOS drawn or limit reached
    eos = torch.zeros(b, dtype=torch.bool, device=device)
    steps = int(limits.max())
    tokens, logps, kept = [], [], []
    for t in range(steps):
        raw = out.logits[:, -1].float()  # (B, V)
        policy_logits = lm_ops.mask_after_eos(
            (raw / temperature).unsqueeze(1), ended.unsqueeze(1), eos_id
        )[:, 0]
        # Ended rows draw too and then get EOS: the draws of a row that shares its generator
        # with others do not depend on when those ended. Their log-prob is 0.
        tok = torch.where(ended, eos_id, rows.draw(raw))  # (B,)
        logps.append(F.log_softmax(policy_logits, -1).gather(1, tok[:, None])[:, 0])
        tokens.append(tok)
        if keep_logits:
            kept.append(policy_logits)
        eos |= ~ended & (tok == eos_id)
        ended |= (tok == eos_id) | (limits <= t + 1)
        if t + 1 == steps or (not keep_logits and bool(ended.all())):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        out = lm(
            input_ids=tok[:, None],
            attention_mask=mask,
            position_ids=next_pos + t,
            cache=cache,
            use_cache=True,
        )
        cache = out.cache
    pad = steps - len(tokens)  # every row ended early: what the remaining steps would have drawn
    return Sampled(
        tokens=F.pad(torch.stack(tokens, 1), (0, pad), value=eos_id),  # (B, T)
        token_logp=F.pad(torch.stack(logps, 1), (0, pad)),  # (B, T)
        eos=eos,
        features=feats,
        logits=torch.stack(kept, 1) if keep_logits else None,  # (B, T, V)
    )
