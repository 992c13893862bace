"""Throughput and memory at 135M: the real SmolLM2-135M-Instruct, side by side with a baseline.

Three parts, each in one run with its baseline (the sides take turns):

* **generation**: lmrl's sampler (:func:`lmrl.policies.sampler.sample`, the loop the env
  runners and Serve share) against transformers' ``model.generate``, same model, same
  left-padded prompts, plain sampling at temperature 1, batch 1 and 16, a fixed number of new
  tokens (the sampler gets an EOS id that never occurs; ``generate`` gets
  ``min_new_tokens``), so both run the full length;
* **choose scoring**: ``lm_ops.score_candidates`` with the prompt's KV cache shared by the
  candidates against the prompt repeated per candidate (``shared_prompt=False``), on Maze
  observations rendered as the policy renders them for SmolLM2 (chat prompt with the env's
  docs and the actions listed), with LoRA on: the runner's forward pass and the learner's
  forward and backward pass;
* **one LoRA RL run** (full size only): ``lmrl train examples/arithmetic_smollm2.yaml`` for
  2 iterations, its env steps per second (the second iteration, after start-up) and the peak
  RSS of its whole process tree, against the model's size times the copies the run holds.

    python benchmarks/real_model.py            # full: minutes on a 2-core CPU
    python benchmarks/real_model.py --quick    # seconds-to-a-minute smoke run
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MODEL = "smollm2-135m-instruct"
TARGET = 1.0
MiB = 1 << 20
RL_CONFIG = common.ROOT / "examples" / "arithmetic_smollm2.yaml"


def _load(model: str):
    from lmrl.policies.lm import load_lm

    lm, tok = load_lm(model)
    return lm.eval(), tok


def generation(lm, tok, batch: int, new_tokens: int, repeats: int) -> dict[str, Any]:
    """New tokens/s of the sampler and of ``generate`` for one batch size."""
    import torch

    from lmrl.policies.sampler import RowSampling, sample

    texts = [f"You are in room {i}. Exits: north, east. Goal: find the key. What do you do?"[: 40 + 7 * (i % 5)]
             for i in range(batch)]  # fmt: skip
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    gen = torch.Generator().manual_seed(0)

    def ours() -> None:
        with torch.no_grad():
            rows = RowSampling.uniform(batch, 1.0, False, gen)
            drawn = sample(lm, ids, mask, -1, 1.0, rows, new_tokens)
        assert drawn.tokens.shape == (batch, new_tokens), drawn.tokens.shape

    def theirs() -> None:
        with torch.no_grad():
            out = lm.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )  # fmt: skip
        assert out.shape == (batch, ids.shape[1] + new_tokens)

    times = common.interleaved({"lmrl": ours, "hf": theirs}, repeats)
    n = batch * new_tokens
    return {"batch": batch, "new_tokens": new_tokens, "prompt_tokens": int(ids.shape[1]),
            "lmrl_tokens_per_s": round(n / times["lmrl"], 1), "hf_tokens_per_s": round(n / times["hf"], 1),
            "ratio": common.ratio(times["hf"], times["lmrl"])}  # fmt: skip


def maze_batch(model: str, tok, n: int) -> dict[str, Any]:
    """``n`` Maze observations from random play, encoded as the policy encodes them for ``model``."""
    from choose_scoring import observations

    from lmrl.envs.adapter import TextCodec
    from lmrl.pipelines.config import RunConfig
    from lmrl.pipelines.policy_setup import adapter_config

    cfg = RunConfig.model_validate(
        {"env": {"id": "lmrl/Maze-v0"}, "policy": {"model": model, "action_mode": "choose"}}
    )
    return observations("lmrl/Maze-v0", tok, n, TextCodec(tok, adapter_config(cfg)))


def choose_scoring(
    model: str, lm, tok, batch: int, train_batch: int, repeats: int
) -> dict[str, Any]:
    """Seconds per batch, shared prompt cache against the prompt repeated: forward (runner) at
    ``batch`` rows, forward and backward (learner) at ``train_batch`` rows (a minibatch: the
    repeated side's activations at 16 rows of Maze chat prompts passed 24 GB here)."""
    import torch

    from lmrl.policies import lm_ops

    obs = maze_batch(model, tok, batch)
    inputs = (obs["prompt_ids"], obs["prompt_mask"], obs["cand_ids"], obs["cand_mask"])
    legal = obs["action_mask"] > 0
    with torch.no_grad():
        a, _ = lm_ops.score_candidates(lm, *inputs, normalize=False)
        b, _ = lm_ops.score_candidates(lm, *inputs, normalize=False, shared_prompt=False)
    diff = float((a - b)[legal].abs().max())
    assert diff < 1e-3, f"the two scorings differ by {diff}"

    def act(shared: bool) -> None:
        with torch.no_grad():
            lm_ops.score_candidates(lm, *inputs, normalize=False, shared_prompt=shared)

    rows = slice(0, train_batch)

    def train(shared: bool) -> None:
        lm.zero_grad()
        part = tuple(x[rows] for x in inputs)
        scores, feats = lm_ops.score_candidates(lm, *part, normalize=False, shared_prompt=shared)
        (scores[legal[rows]].sum() + feats.sum()).backward()

    sides = {"shared": True, "repeated": False}
    fwd = common.interleaved({k: (lambda s=s: act(s)) for k, s in sides.items()}, repeats)
    fb = common.interleaved({k: (lambda s=s: train(s)) for k, s in sides.items()}, repeats)
    return {"batch": batch, "train_batch": train_batch, "mean_legal_actions": round(float(legal.sum(-1).float().mean()), 2),
            "mean_prompt_tokens": round(float(obs["prompt_mask"].sum(-1).float().mean()), 1),
            "fwd_s": fwd, "fwd_bwd_s": fb, "max_score_diff": diff,
            "speedup_fwd": common.ratio(fwd["repeated"], fwd["shared"]),
            "speedup_fwd_bwd": common.ratio(fb["repeated"], fb["shared"])}  # fmt: skip


def rl_run(args, work: Path) -> dict[str, Any]:
    """Two iterations of the Arithmetic LoRA GRPO example (with ``--model``) under the RSS sampler."""
    from memory import lmrl_command, measured

    out = work / "rl"
    cmd = lmrl_command("train", str(RL_CONFIG), "--set", "run.stop.iterations=2", "--set", f"run.output_dir={out}",
                       "--set", "run.name=bench", "--set", "run.eval_episodes=0", "--set", f"policy.model={args.model}")  # fmt: skip
    result = measured(cmd, args, timeout=1800)
    metrics = [
        json.loads(line) for line in (out / "bench" / "metrics.jsonl").read_text().splitlines()
    ]
    second = metrics[1]["elapsed_s"] - metrics[0]["elapsed_s"]
    steps = metrics[1]["timesteps"] - metrics[0]["timesteps"]
    result.update({"iteration_2_s": round(second, 1), "env_steps_per_s": round(steps / second, 3),
                   "iteration_1_s": round(metrics[0]["elapsed_s"], 1)})  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    p = common.parser("real_model", __doc__)
    p.add_argument(
        "--model", default=MODEL, help=f"catalog name, HF directory or hub id (default: {MODEL})"
    )
    p.add_argument("--no-rl", action="store_true", help="skip the LoRA RL run (minutes)")
    args = p.parse_args(argv)
    started = common.setup(args)
    import torch

    from lmrl.policies.lora import LoraSettings, apply_lora

    lm, tok = _load(args.model)
    params = sum(p.numel() for p in lm.parameters())
    weight_mib = sum(p.numel() * p.element_size() for p in lm.parameters()) / MiB
    batches, new_tokens, repeats = ((1, 2), 4, 1) if args.quick else ((1, 16), 64, 3)
    gen = [generation(lm, tok, b, new_tokens, repeats) for b in batches]
    print("generation:", json.dumps(gen), flush=True)
    lm = apply_lora(lm, LoraSettings(r=8, alpha=16.0, target_modules="all-linear"))
    scoring = choose_scoring(args.model, lm, tok, *((2, 2) if args.quick else (16, 4)), repeats)
    print("choose scoring:", json.dumps(scoring), flush=True)
    rl = None
    if not (args.quick or args.no_rl):
        with tempfile.TemporaryDirectory(
            dir=args.work if Path(args.work).is_dir() else None
        ) as work:
            rl = rl_run(args, Path(work))
        # Copies of the weights the run holds: the learner's module (base + adapter) and the
        # env runner's inference module in the same driver process (num_env_runners=0); the
        # KL reference is the adapter switched off, so no third copy.
        rl["weight_copies"] = 2
        rl["weights_x_copies_mib"] = round(2 * weight_mib, 1)
    rows = [["generation", f"batch {g['batch']}, {g['new_tokens']} new tokens", f"{g['lmrl_tokens_per_s']} tok/s",
             f"{g['hf_tokens_per_s']} tok/s (generate)", g["ratio"]] for g in gen]  # fmt: skip
    rows += [
        ["choose scoring, runner fwd", f"Maze chat prompts, batch {scoring['batch']}",
         f"{scoring['fwd_s']['shared']:.3f} s", f"{scoring['fwd_s']['repeated']:.3f} s (prompt repeated)",
         scoring["speedup_fwd"]],
        ["choose scoring, learner fwd+bwd", f"Maze chat prompts, batch {scoring['train_batch']}, LoRA r=8",
         f"{scoring['fwd_bwd_s']['shared']:.3f} s", f"{scoring['fwd_bwd_s']['repeated']:.3f} s (prompt repeated)",
         scoring["speedup_fwd_bwd"]],
    ]  # fmt: skip
    if rl:
        rows.append(["LoRA GRPO run", "examples/arithmetic_smollm2.yaml, 2 iterations",
                     f"{rl['env_steps_per_s']} env steps/s", f"peak tree RSS {rl['peak_tree_rss_mib']} MiB vs "
                     f"{rl['weights_x_copies_mib']} MiB weights x {rl['weight_copies']} copies", None])  # fmt: skip
    headline = min(g["ratio"] or 0.0 for g in gen)
    common.report(
        "real_model",
        args,
        title=f"{args.model} ({params / 1e6:.1f}M parameters, fp32, {torch.get_num_threads()} threads): "
        "lmrl against its baseline, the sides taking turns",
        columns=["part", "case", "lmrl", "baseline", "ratio"],
        rows=rows,
        lmrl={"generation": gen, "choose_scoring": scoring, "rl": rl},
        baseline={
            "generation": "transformers generate",
            "choose_scoring": "prompt repeated per candidate",
        },
        ratio_value=headline,
        ratio_meaning="sampler tokens/s / generate tokens/s, worst batch size",
        target={"min": TARGET, "description": "generation at 135M >= 1.0x transformers generate"},
        extra={"model": args.model, "params": params, "weights_mib": round(weight_mib, 1)},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
