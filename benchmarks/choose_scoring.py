"""Choose-mode scoring: one shared prompt KV cache against the prompt repeated per candidate.

In choose mode the policy scores every admissible action by its
length-normalised log-likelihood after the prompt. ``lm_ops.score_candidates``
runs the prompt once and shares its KV cache among the K candidates; the
baseline is the previous implementation (kept here), which ran prompt +
candidate as K full sequences. Both give the same scores and gradients
(checked here, and in ``tests/policies/test_module.py``). Timed: one forward
and backward pass (what the PPO learner does per minibatch) and one forward
pass without gradients (what the env runner does per step), on real batches
of observations from Maze (4 moves) and TicTacToe (up to 9 cells), the two
sides taking turns.

    python benchmarks/choose_scoring.py            # batch 128, 7 repeats
    python benchmarks/choose_scoring.py --quick    # batch 16, 3 repeats
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def repeated_prompt_scores(lm, prompt, pmask, cand, cmask):
    """The baseline: prompt + candidate as K full sequences (lmrl's implementation until 2026-11-28)."""
    import torch
    import torch.nn.functional as F

    from lmrl.policies.lm_ops import _positions, _safe_mask, trim_prompt, used_candidates

    b, k_all, _ = cand.shape
    prompt, pmask = trim_prompt(prompt, _safe_mask(pmask))
    cand, cmask, k, c = used_candidates(cand, cmask)
    p = prompt.shape[1]
    ids = torch.cat([prompt.repeat_interleave(k, 0), cand.reshape(b * k, c)], 1)
    mask = torch.cat([pmask.repeat_interleave(k, 0), cmask.reshape(b * k, c)], 1)
    out = lm(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), output_hidden_states=True, logits_to_keep=c + 1)
    logits = out.logits[:, :c]
    tok_logp = torch.gather(F.log_softmax(logits.float(), -1), 2, cand.reshape(b * k, c, 1))[..., 0]
    cm = cmask.reshape(b * k, c).to(tok_logp.dtype)
    scores = (tok_logp * cm).sum(-1) / cm.sum(-1).clamp(min=1.0)
    features = out.hidden_states[-1][::k, p - 1]
    return F.pad(scores.view(b, k), (0, k_all - k)), features


def observations(env_id: str, tokenizer: Any, n: int, codec: Any = None) -> dict[str, Any]:
    """``n`` encoded observations from random play (all turns, both seats for multi-agent envs).

    ``codec`` encodes them (default: the plain choose-mode prompt with up to 9 candidates).
    """
    import numpy as np
    import torch

    from lmrl.envs.adapter import AdapterConfig, TextCodec

    codec = codec or TextCodec(tokenizer, AdapterConfig(action_mode="choose", max_candidates=9))
    rng, out = np.random.default_rng(0), []
    if env_id == "lmrl/TicTacToe-v0":
        from lmrl.envs.multiagent import make_aec

        env, seed = make_aec(env_id), 0
        while len(out) < n:
            env.reset(seed=seed)
            seed += 1
            for _agent in env.agent_iter():
                obs, _, term, trunc, _ = env.last()
                if term or trunc:
                    env.step(None)
                    continue
                out.append(codec.encode_observation(obs))
                env.step(obs["actions"][int(rng.integers(len(obs["actions"])))])
    else:
        import lmrl.envs

        env, seed = lmrl.envs.make(env_id), 0
        obs, _ = env.reset(seed=seed)
        while len(out) < n:
            out.append(codec.encode_observation(obs))
            obs, _, term, trunc, _ = env.step(obs["actions"][int(rng.integers(len(obs["actions"])))])
            if term or trunc:
                seed += 1
                obs, _ = env.reset(seed=seed)
    out = out[:n]
    return {k: torch.as_tensor(np.stack([o[k] for o in out])) for k in out[0]}


def main(argv: list[str] | None = None) -> int:
    p = common.parser("choose_scoring", __doc__)
    args = p.parse_args(argv)
    started = common.setup(args)
    import torch

    from lmrl.policies import lm_ops
    from lmrl.policies.lm import load_lm

    lm, tokenizer = load_lm(common.tiny_model(args.work, "tiny"))
    batch, repeats = (16, 3) if args.quick else (128, 7)
    rows, sides, worst = [], {}, None
    for env_id in ("lmrl/Maze-v0", "lmrl/TicTacToe-v0"):
        obs = observations(env_id, tokenizer, batch)
        inputs = (obs["prompt_ids"], obs["prompt_mask"], obs["cand_ids"], obs["cand_mask"])
        legal = obs["action_mask"] > 0
        fns = {"shared prompt cache (lmrl)": lm_ops.score_candidates, "prompt repeated per candidate": repeated_prompt_scores}
        with torch.no_grad():
            ours, theirs = (f(lm, *inputs) for f in fns.values())
        diff = float((ours[0] - theirs[0])[legal].abs().max())
        assert diff < 1e-4 and float((ours[1] - theirs[1]).abs().max()) < 1e-4, f"scores differ by {diff}"

        def train_step(fn, inputs=inputs, legal=legal):
            lm.zero_grad()
            scores, feats = fn(lm, *inputs)
            (scores[legal].sum() + feats.sum()).backward()

        def act_step(fn, inputs=inputs):
            with torch.no_grad():
                fn(lm, *inputs)

        train = common.interleaved({name: (lambda f=f: train_step(f)) for name, f in fns.items()}, repeats)
        act = common.interleaved({name: (lambda f=f: act_step(f)) for name, f in fns.items()}, repeats)
        k = float(legal.sum(-1).float().mean())
        prompt_len = float(obs["prompt_mask"].sum(-1).float().mean())
        for name in fns:
            rows.append([env_id, name, batch, round(k, 2), round(prompt_len, 1), train[name], act[name]])
        speedup = {
            "train": round(train["prompt repeated per candidate"] / train["shared prompt cache (lmrl)"], 3),
            "act": round(act["prompt repeated per candidate"] / act["shared prompt cache (lmrl)"], 3),
        }
        sides[env_id] = {"train_s": train, "act_s": act, "speedup": speedup, "max_score_diff": diff}
        worst = min(worst or speedup["train"], speedup["train"])
    common.report(
        "choose_scoring",
        args,
        title="Choose-mode scoring, tiny GPT-2: seconds per batch, forward+backward (learner) and forward (runner)",
        columns=["env", "side", "batch", "mean legal actions", "mean prompt tokens", "fwd+bwd s", "fwd s"],
        rows=rows,
        lmrl={env: s["speedup"] for env, s in sides.items()},
        baseline={env: {"train_s": s["train_s"], "act_s": s["act_s"]} for env, s in sides.items()},
        ratio_value=worst,
        ratio_meaning="repeated-prompt fwd+bwd seconds / shared-cache seconds, worst env (> 1: the shared cache is faster)",
        extra={"sides": sides, "repeats": repeats},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
