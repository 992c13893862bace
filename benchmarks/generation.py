"""Generation: lmrl's batched KV-cache sampling against transformers' ``model.generate``.

Same model, same left-padded prompts, same batch and number of new tokens
(``min_new_tokens`` keeps ``generate`` from stopping early at EOS; lmrl's
:func:`lmrl.policies.lm_ops.sample` always runs the full length), plain
sampling at temperature 1 on both sides (``top_k=0``, ``top_p=1``). The two
sides take turns; the medians of the timed repeats give tokens/s. Batch 1
against batch 16 shows what batching buys. With a GPU, the same rows run on
``cuda`` too.

    python benchmarks/generation.py            # full
    python benchmarks/generation.py --quick    # seconds
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGET = 0.9


def _prompts(tokenizer, batch: int, device):
    """Left-padded prompts of varied length from env observations, as the policy sees them."""

    texts = [
        f"You are in room {i}. Exits: north, east. Goal: find the key. What do you do?"[
            : 40 + 7 * (i % 5)
        ]
        for i in range(batch)
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def measure(model_dir: str, batch: int, new_tokens: int, repeats: int, device: str = "cpu") -> dict:
    """Tokens/s of both sides for one (model, batch, length)."""
    import torch

    from lmrl.policies import lm_ops
    from lmrl.policies.lm import load_lm

    lm, tok = load_lm(model_dir)
    lm = lm.to(device).eval()
    ids, mask = _prompts(tok, batch, device)
    eos = tok.eos_token_id
    gen = torch.Generator(device=device).manual_seed(0)

    def ours():
        tokens, _, _ = lm_ops.sample(lm, ids, mask, new_tokens, eos, generator=gen)
        assert tokens.shape == (batch, new_tokens)

    def theirs():
        with torch.no_grad():
            out = lm.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
                eos_token_id=eos,
            )  # fmt: skip
        assert out.shape == (batch, ids.shape[1] + new_tokens)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = common.interleaved(
        {"lmrl": lambda: (ours(), sync()), "hf": lambda: (theirs(), sync())}, repeats
    )
    n = batch * new_tokens
    return {
        "model": Path(model_dir).name,
        "params": sum(p.numel() for p in lm.parameters()),
        "device": device,
        "batch": batch,
        "new_tokens": new_tokens,
        "prompt_tokens": int(ids.shape[1]),
        "lmrl_tokens_per_s": round(n / times["lmrl"], 1),
        "hf_tokens_per_s": round(n / times["hf"], 1),
        "ratio": common.ratio(times["hf"], times["lmrl"]),
    }


def main(argv: list[str] | None = None) -> None:
    args = common.parser("generation", __doc__).parse_args(argv)
    started = common.setup(args)
    import torch

    if args.quick:
        grid, new_tokens, repeats = [("tiny", 1), ("tiny", 4)], 8, 2
    else:
        grid, new_tokens, repeats = [(m, b) for m in ("tiny", "small") for b in (1, 16)], 32, 7
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for device in devices:
        for preset, batch in grid:
            model_dir = common.tiny_model(args.work, preset)
            results.append(measure(model_dir, batch, new_tokens, repeats, device))
    rows = [
        [r["device"], f"{r['model']} ({r['params'] / 1e6:.2f}M)", r["batch"], r["new_tokens"],
         r["lmrl_tokens_per_s"], r["hf_tokens_per_s"], r["ratio"]]
        for r in results
    ]  # fmt: skip
    cpu = [r for r in results if r["device"] == "cpu"]
    headline = min(cpu, key=lambda r: r["ratio"] or 0.0)  # the worst case decides the target
    biggest = max(r["batch"] for r in cpu)
    batching = {
        r["model"]: common.ratio(
            r["lmrl_tokens_per_s"],
            next(
                x["lmrl_tokens_per_s"] for x in cpu if x["model"] == r["model"] and x["batch"] == 1
            ),
        )
        for r in cpu
        if r["batch"] == biggest
    }
    common.report(
        "generation",
        args,
        title="Generation: new tokens/s, lmrl lm_ops.sample vs transformers generate (same model, batch, length)",
        columns=["device", "model", "batch", "new tokens", "lmrl tok/s", "generate tok/s", "ratio"],
        rows=rows,
        lmrl={"tokens_per_s": headline["lmrl_tokens_per_s"], "case": headline},
        baseline={"tokens_per_s": headline["hf_tokens_per_s"], "name": "transformers generate"},
        ratio_value=headline["ratio"],
        ratio_meaning="lmrl tokens/s / generate tokens/s, worst CPU row",
        target={"min": TARGET, "description": "generation >= 0.9x transformers generate"},
        extra={"rows": results, f"lmrl_batch_{biggest}_over_batch_1": batching},
        started=started,
    )


if __name__ == "__main__":
    main()
