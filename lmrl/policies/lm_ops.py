"""LM operations the policy is built from: scoring candidates, sampling, teacher forcing.

All take left-padded prompts (``prompt`` and ``pmask`` of shape (B, P)) and
work for any ``AutoModelForCausalLM`` that accepts ``attention_mask``,
``position_ids``, ``cache`` and ``logits_to_keep``. Position ids are derived
from the mask, so left padding does not shift positions.

Token-in/token-out: :func:`lmrl.policies.sampler.sample` records the
log-prob of each token id it draws, and :func:`teacher_force` recomputes those
logits over the very same ids. Positions after the first EOS are masked the
same way in both (:func:`mask_after_eos`), so their log-prob is exactly 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Logit given to impossible tokens: finite, so entropies stay finite.
NEG = -1e4


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _safe_mask(pmask: torch.Tensor) -> torch.Tensor:
    # RLlib builds modules on all-zero dummy batches; attend to at least one token.
    pmask = pmask.clone()
    pmask[:, -1] = 1
    return pmask


def done_before(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B, T) bool: True at positions after the first EOS (that EOS itself is False)."""
    is_eos = (tokens == eos_id).long()
    return (is_eos.cumsum(-1) - is_eos) > 0


def mask_after_eos(logits: torch.Tensor, done: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Forces EOS (log-prob 0) at positions where the sequence has already ended.

    Args:
        logits: (B, T, V) logits.
        done: (B, T) bool, True where the sequence ended before this position.
        eos_id: EOS token id.
    """
    # One (B, T, V) copy, not two: at a real vocabulary each is minibatch x T x 49,152 floats.
    done = done.unsqueeze(-1)
    forced = logits.masked_fill(done, NEG)
    forced[..., eos_id : eos_id + 1] = torch.where(done, 0.0, logits[..., eos_id : eos_id + 1])
    return forced  # (B, T, V)


#: Rows per chunk in :func:`token_stats`: bounds the transient (rows x T x V) log-softmax.
STATS_CHUNK = 16


def token_stats(logits: torch.Tensor, tokens: torch.Tensor, chunk: int = STATS_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-prob of ``tokens`` and per-token entropy, a chunk of rows at a time.

    What PPO's loss needs from generate mode's (B, T, V) logits, without keeping
    full log-softmax distributions for the whole minibatch at once.

    Args:
        logits: (B, T, V) logits (masked after EOS and temperature-scaled).
        tokens: (B, T) the sampled ids.
        chunk: Rows per log-softmax.

    Returns:
        log-probs (B, T) and entropies (B, T).
    """
    logps, entropies = [], []
    for i in range(0, logits.shape[0], chunk):
        logp = F.log_softmax(logits[i : i + chunk].float(), -1)  # (chunk, T, V)
        logps.append(logp.gather(2, tokens[i : i + chunk].unsqueeze(-1))[..., 0])
        entropies.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(logps), torch.cat(entropies)


def trim_prompt(prompt: torch.Tensor, pmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drops the left-padding columns no row in the batch uses (pure speed: same results)."""
    used = pmask.any(0).nonzero()
    start = int(used[0]) if len(used) else pmask.shape[1] - 1
    return prompt[:, start:], pmask[:, start:]


def prompt_features(lm, prompt: torch.Tensor, pmask: torch.Tensor) -> torch.Tensor:
    """(B, H) last-layer hidden state at the prompt's last token (value-head input)."""
    prompt, pmask = trim_prompt(prompt, _safe_mask(pmask))
    out = lm(
        input_ids=prompt,
        attention_mask=pmask,
        position_ids=_positions(pmask),
        output_hidden_states=True,
        logits_to_keep=1,
    )
    return out.hidden_states[-1][:, -1]


def used_candidates(cand: torch.Tensor, cmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Only the candidate slots and token columns some row uses (pure speed: same results).

    Args:
        cand: (B, K, C) right-padded candidate ids; cmask: (B, K, C).

    Returns:
        ``cand`` and ``cmask`` cut to (B, k, c), then k and c.
    """
    k = max(1, int(cmask.any(-1).sum(-1).max()))
    c = max(1, int(cmask.any(0).any(0).nonzero().max()) + 1) if cmask.any() else 1
    return cand[:, :k, :c].contiguous(), cmask[:, :k, :c].contiguous(), k, c


def _prompt_then_candidates(
    prompt: torch.Tensor, pmask: torch.Tensor, cand: torch.Tensor, cmask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each prompt (B, P) once per candidate (B, k, C), followed by it: ids and mask (Bk, P+C)."""
    b, k, c = cand.shape
    ids = torch.cat([prompt.repeat_interleave(k, 0), cand.reshape(b * k, c)], 1)
    mask = torch.cat([pmask.repeat_interleave(k, 0), cmask.reshape(b * k, c)], 1)
    return ids, mask


def score_candidates(
    lm,
    prompt: torch.Tensor,
    pmask: torch.Tensor,
    cand: torch.Tensor,
    cmask: torch.Tensor,
    normalize: bool = True,
    shared_prompt: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Length-normalised log-likelihood of each candidate continuation (GLAM/TWOSOME).

    score_k = (1 / |a_k|) * sum_t log p(a_k,t | prompt, a_k,<t); see Carta et al. 2023
    (https://arxiv.org/abs/2302.02662) and Tan et al. 2024 (https://arxiv.org/abs/2401.14151).
    With ``normalize=False`` the score is the plain sum, log p(a_k | prompt).

    Args:
        lm: A causal LM.
        prompt: (B, P) left-padded prompt ids; pmask: (B, P).
        cand: (B, K, C) right-padded candidate ids; cmask: (B, K, C).
        normalize: Divide each candidate's summed log-prob by its length.
        shared_prompt: Run the prompt once and share its KV cache across the K
            candidates (False: run prompt + candidate K times; same scores, needed
            under gradient checkpointing, which keeps no cache).

    Returns:
        scores (B, K) and prompt features (B, H).
    """
    b, k_all, _ = cand.shape
    prompt, pmask = trim_prompt(prompt, _safe_mask(pmask))
    cand, cmask, k, c = used_candidates(cand, cmask)  # the scores are padded back to K at the end
    p = prompt.shape[1]
    if not shared_prompt:
        ids, mask = _prompt_then_candidates(prompt, pmask, cand, cmask)  # (BK, P+C)
        out = lm(
            input_ids=ids,
            attention_mask=mask,
            position_ids=_positions(mask),
            output_hidden_states=True,
            logits_to_keep=c + 1,
        )
        features = out.hidden_states[-1][::k, p - 1]  # (B, H)
        logits = out.logits[:, :c]  # (BK, C, V): position t predicts candidate token t
        return _candidate_scores(logits, cand, cmask, normalize, b, k, k_all), features
    # The prompt runs once; its KV cache is shared by the K candidates (gradients flow through
    # it). Same scores as running prompt + candidate K times, at a fraction of the compute:
    # prompts are long and candidates a few tokens.
    out = lm(
        input_ids=prompt,
        attention_mask=pmask,
        position_ids=_positions(pmask),
        use_cache=True,
        output_hidden_states=True,
        logits_to_keep=1,
    )
    features = out.hidden_states[-1][:, -1]  # (B, H): the prompt's last token
    logits = out.logits[:, -1:].repeat_interleave(k, 0)  # (BK, 1, V): predicts candidate token 0
    if c > 1:
        cache = out.cache
        cache.batch_repeat_interleave(k)
        _, mask = _prompt_then_candidates(prompt, pmask, cand, cmask)  # (BK, P+C)
        rest = lm(
            input_ids=cand.reshape(b * k, c)[:, : c - 1],
            attention_mask=mask[:, : p + c - 1],
            position_ids=_positions(mask)[:, p : p + c - 1],
            cache=cache,
            use_cache=True,
        )
        logits = torch.cat([logits, rest.logits], 1)  # (BK, C, V): position t predicts candidate token t
    return _candidate_scores(logits, cand, cmask, normalize, b, k, k_all), features


def _candidate_scores(
    logits: torch.Tensor, cand: torch.Tensor, cmask: torch.Tensor, normalize: bool, b: int, k: int, k_all: int
) -> torch.Tensor:
    """(B, K_all) candidate scores from (BK, C, V) logits over (B, k, C) candidates."""
    c = cand.shape[-1]
    tok_logp = torch.gather(F.log_softmax(logits.float(), -1), 2, cand.reshape(b * k, c, 1))[..., 0]
    cm = cmask.reshape(b * k, c).to(tok_logp.dtype)
    scores = (tok_logp * cm).sum(-1)  # (BK,)
    if normalize:
        scores = scores / cm.sum(-1).clamp(min=1.0)
    return F.pad(scores.view(b, k), (0, k_all - k))  # (B, K); unused slots are masked by the caller


def choice_logits(
    lm,
    obs: dict[str, torch.Tensor],
    scoring: str = "mean",
    temperature: float = 1.0,
    shared_prompt: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose mode: the policy's logits over candidate slots, and the prompt features.

    Args:
        lm: A causal LM.
        obs: Encoded observations (``prompt_ids``, ``prompt_mask``, ``cand_ids``,
            ``cand_mask``, ``action_mask``).
        scoring: ``"mean"`` (length-normalised) or ``"sum"`` of candidate token log-probs.
        temperature: Scores are divided by it; slots without an admissible action get :data:`NEG`.
        shared_prompt: See :func:`score_candidates`.

    Returns:
        logits (B, K) and features (B, H).
    """
    scores, feats = score_candidates(
        lm, obs["prompt_ids"], obs["prompt_mask"], obs["cand_ids"], obs["cand_mask"],
        normalize=scoring == "mean", shared_prompt=shared_prompt,
    )  # fmt: skip
    return torch.where(obs["action_mask"] > 0, scores / temperature, NEG), feats  # (B, K)


def candidate_features(lm, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, K, H) hidden state at each candidate's last token, after the prompt."""
    cand, cmask = obs["cand_ids"], obs["cand_mask"]
    b, k_all, _ = cand.shape
    prompt, pmask = trim_prompt(obs["prompt_ids"], _safe_mask(obs["prompt_mask"]))
    cand, cmask, k, c = used_candidates(cand, cmask)
    ids, mask = _prompt_then_candidates(prompt, pmask, cand, cmask)  # (BK, P+C)
    out = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
        output_hidden_states=True,
        logits_to_keep=1,
    )
    hidden = out.hidden_states[-1]  # (BK, P+C, H)
    last = prompt.shape[1] + cmask.reshape(b * k, c).sum(-1).clamp(min=1) - 1  # (BK,)
    feats = hidden[torch.arange(b * k), last].view(b, k, -1)  # (B, k, H)
    return F.pad(feats, (0, 0, 0, k_all - k))  # (B, K, H)


def sample(
    lm,
    prompt: torch.Tensor,
    pmask: torch.Tensor,
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The policy's draw with full logits and always the full length, as ``benchmarks/`` call it.

    A view of :func:`lmrl.policies.sampler.sample` (the one sampling loop) for
    callers that want the (B, T, V) logits; the policy itself keeps only the
    per-token log-probs and stops once every row has ended.

    Returns:
        tokens (B, T), the masked and temperature-scaled logits they were scored
        under (B, T, V), and the prompt features (B, H).
    """
    from lmrl.policies.sampler import RowSampling
    from lmrl.policies.sampler import sample as sample_rows  # the sampler builds on this module

    rows = RowSampling.uniform(prompt.shape[0], temperature, greedy, generator)
    drawn = sample_rows(
        lm, prompt, pmask, eos_id, temperature, rows, max_new_tokens, features=True, keep_logits=True
    )
    return drawn.tokens, drawn.logits, drawn.features


def teacher_force(
    lm,
    prompt: torch.Tensor,
    pmask: torch.Tensor,
    tokens: torch.Tensor,
    eos_id: int,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Recomputes the logits of already-sampled ``tokens`` in one forward pass.

    Returns:
        logits (B, T, V), masked after EOS and temperature-scaled exactly as
        :func:`lmrl.policies.sampler.sample` scores its draws, and the prompt features (B, H).
    """
    t = tokens.shape[1]
    prompt, pmask = trim_prompt(prompt, _safe_mask(pmask))
    p = prompt.shape[1]
    ids = torch.cat([prompt, tokens], 1)  # (B, P+T)
    mask = torch.cat([pmask, torch.ones_like(tokens)], 1)
    out = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=_positions(mask),
        output_hidden_states=True,
        logits_to_keep=t + 1,
    )
    logits = out.logits[:, :t].float() / temperature  # (B, T, V)
    logits = mask_after_eos(logits, done_before(tokens, eos_id), eos_id)
    return logits, out.hidden_states[-1][:, p - 1]


def token_logp(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, T) log softmax(logits)[token] for each position."""
    return torch.gather(F.log_softmax(logits, -1), 2, tokens.unsqueeze(-1))[..., 0]


def sequence_logp(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B,) sum over T of log softmax(logits)[token]."""
    return torch.gather(F.log_softmax(logits, -1), 2, tokens.unsqueeze(-1))[..., 0].sum(-1)
