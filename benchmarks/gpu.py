"""GPU: bf16 pretraining MFU, generation at 135M batch 64, one LoRA PPO step; for a lent CUDA machine.

Three measures on one CUDA GPU, in minutes (``benchmarks/gpu.sh`` caps the
whole run at 8 minutes), written to ``OUT/gpu.json``:

* **Pretraining MFU in bf16.** The model trains on random token blocks the way
  ``lmrl pretrain`` trains (:func:`lmrl.pipelines.lm_train.loop._loss`, its AdamW
  parameter groups, ``torch.autocast`` to bf16 over fp32 weights, gradient
  clipping). Model FLOPs per token ``6 N + 12 L T d`` (PaLM, appendix B) times
  the median tokens/s, over the best bf16 matmul FLOP/s measured on the same
  GPU (8192 x 8192 x 8192, ``torch.matmul``).
* **Generation tokens/s at batch 64, 64 new tokens**: lmrl's KV-cache sampler
  (:func:`lmrl.policies.lm_ops.sample`) against transformers ``generate`` on
  the same bf16 model, left-padded prompts and length, taking turns.
* **One PPO update with LoRA on the GPU**: a rollout of 64 prompts with
  :func:`~lmrl.policies.lm_ops.sample`, the reference log-probs with the LoRA
  adapters disabled, then PPO's token-level clipped surrogate plus the k3 KL
  to the reference, over 4 minibatches, recomputed by
  :func:`~lmrl.policies.lm_ops.teacher_force` (the same loss as
  ``LMPPOLearner``'s token-level path), AdamW on the LoRA weights (r=16 on
  every attention and MLP projection). This is plain torch + peft in one
  process, **not** RLlib's learner: it times the learner's GPU work, not Ray's
  scheduling. The reward is a stand-in (share of sampled token ids below half
  the vocabulary): it only feeds the advantages, whose values do not change
  the time of the step.

The model is SmolLM2-135M-Instruct's architecture (Llama: hidden 576, 30
layers, 9 heads, 3 KV heads, MLP 1536, vocab 49152, tied embeddings),
randomly initialised, unless ``--model DIR`` names a saved model (e.g. the
real SmolLM2-135M-Instruct): throughput depends on the shapes, not on the
weights. Without a CUDA GPU the script says so and exits with status 3;
``--cpu-smoke`` runs every measure at tiny sizes on the CPU instead (to test
the script, not to measure anything: its JSON goes to the quick folder).

    bash benchmarks/gpu.sh                      # on a CUDA machine
    python benchmarks/gpu.py --model DIR        # the real SmolLM2-135M-Instruct
    python benchmarks/gpu.py --cpu-smoke        # tiny sizes on the CPU, seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

if str(common.ROOT) not in sys.path:  # a device machine may have the checkout, not an install
    sys.path.insert(1, str(common.ROOT))

#: Exit status when there is no CUDA GPU (and no ``--cpu-smoke``).
EXIT_NO_GPU = 3
#: Exit status when a package the script needs is missing.
EXIT_MISSING = 4
PARTS = ("mfu", "generation", "ppo")

#: SmolLM2-135M-Instruct's architecture (its config.json on the hub).
SMOLLM2_135M: dict[str, Any] = {
    "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
    "intermediate_size": 1536, "vocab_size": 49152, "tie_word_embeddings": True,
    "max_position_embeddings": 8192, "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
}  # fmt: skip
#: A Llama of a few thousand parameters for ``--cpu-smoke``.
TINY_LLAMA: dict[str, Any] = {
    **SMOLLM2_135M, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 512,
    "max_position_embeddings": 256,
}  # fmt: skip

#: Sizes on the GPU: 16k tokens a pretraining step (by estimate about 25 GB of activations and
#: logits at SmolLM2-135M's shape), decoding at batch 64.
GPU_SIZES: dict[str, Any] = {
    "matmul": 8192, "pretrain_batch": 8, "pretrain_length": 2048, "pretrain_steps": 25,
    "pretrain_skip": 5, "gen_batch": 64, "gen_prompt": 64, "gen_new_tokens": 64, "gen_repeats": 5,
    "ppo_batch": 64, "ppo_prompt": 64, "ppo_new_tokens": 64, "ppo_minibatches": 4,
    "ppo_iterations": 3, "lora_r": 16,
}  # fmt: skip
#: ``--quick`` on a GPU: the same shapes, fewer repeats.
QUICK_SIZES: dict[str, Any] = {
    **GPU_SIZES, "matmul": 4096, "pretrain_steps": 8, "pretrain_skip": 3, "gen_repeats": 2,
    "ppo_iterations": 1,
}  # fmt: skip
#: Sizes for ``--cpu-smoke``: every code path, in seconds.
SMOKE_SIZES: dict[str, Any] = {
    "matmul": 128, "pretrain_batch": 2, "pretrain_length": 32, "pretrain_steps": 3,
    "pretrain_skip": 1, "gen_batch": 4, "gen_prompt": 8, "gen_new_tokens": 8, "gen_repeats": 1,
    "ppo_batch": 4, "ppo_prompt": 8, "ppo_new_tokens": 8, "ppo_minibatches": 2,
    "ppo_iterations": 1, "lora_r": 4,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The script's arguments: :func:`common.parser`'s plus ``--model``, ``--cpu-smoke``, ``--only``."""
    p = common.parser("gpu", __doc__)
    p.add_argument(
        "--model",
        metavar="DIR",
        help="a saved causal LM (save_pretrained directory), e.g. SmolLM2-135M-Instruct "
        "(default: SmolLM2-135M's architecture, randomly initialised)",
    )
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="no GPU needed: every measure at tiny sizes on the CPU, to test the script "
        "(implies --quick: the JSON goes to the quick folder)",
    )
    p.add_argument("--only", nargs="+", choices=PARTS, help=f"run only these ({', '.join(PARTS)})")
    p.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="skip the parts not yet started once this many seconds have passed (default: 420; "
        "gpu.sh kills the run at 480)",
    )
    return p


def no_gpu_message() -> str:
    """What the script prints when torch sees no CUDA GPU."""
    import torch

    built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA (a CPU-only build)"
    return (
        f"error: no CUDA GPU found (torch {torch.__version__}, built {built}; "
        "torch.cuda.is_available() is False). This script measures GPU throughput: run "
        "benchmarks/gpu.sh on a machine with a CUDA GPU, or pass --cpu-smoke to test it at "
        "tiny sizes on the CPU."
    )


def missing_packages() -> list[str]:
    """The packages this script needs that are not importable here."""
    import importlib.util

    return [name for name in ("torch", "transformers", "peft") if importlib.util.find_spec(name) is None]


def build_model(model: str | None, smoke: bool, device: str):
    """The model under test, fp32 weights on ``device``, and a description of it.

    Args:
        model: A saved model's directory (or hub id, offline), or None for SmolLM2-135M's shape.
        smoke: Tiny Llama instead of SmolLM2-135M's shape (when ``model`` is None).
        device: ``"cuda"`` or ``"cpu"``.
    """
    import torch

    if model:
        from lmrl.policies.lm import load_lm

        lm, _ = load_lm(model, dtype=torch.float32)
        source = f"{model} (pretrained weights)"
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        shape = TINY_LLAMA if smoke else SMOLLM2_135M
        with torch.device(device):
            lm = LlamaForCausalLM(LlamaConfig(**shape))
        name = "tiny Llama" if smoke else "SmolLM2-135M architecture"
        source = f"{name}, randomly initialised"
    lm = lm.to(device)
    return lm, {"source": source, "params": sum(p.numel() for p in lm.parameters())}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, size: int) -> float:
    """Best bf16 FLOP/s of a ``size``-cubed matmul over 7 tries of 20 (the GPU's practical peak)."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    a @ b
    best = 0.0
    for _ in range(7):
        _sync(device)
        start = time.perf_counter()
        for _ in range(20):
            a @ b
        _sync(device)
        best = max(best, 20 * 2 * size**3 / (time.perf_counter() - start))
    return best


def flops_per_token(config: Any, params: int, length: int) -> float:
    """Training FLOPs per token: ``6 N + 12 L T d`` (forward + backward; N: every weight, tied once)."""
    return 6 * params + 12 * config.num_hidden_layers * length * config.hidden_size


def pretrain_mfu(lm, sizes: dict[str, Any], device: str, peak: float) -> dict[str, Any]:
    """Tokens/s and MFU of bf16-autocast training steps, as ``lmrl pretrain`` runs them."""
    import torch

    from lmrl.pipelines.lm_train.loop import _loss, _param_groups

    lm.train()
    opt = torch.optim.AdamW(_param_groups(lm, 0.01), lr=1e-4, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(0)
    b, length = sizes["pretrain_batch"], sizes["pretrain_length"]
    rates, losses = [], []
    for step in range(sizes["pretrain_steps"]):
        ids = torch.randint(lm.config.vocab_size, (b, length), generator=gen).to(device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16):
            loss, _, _, _ = _loss(lm, batch, "causal")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if step >= sizes["pretrain_skip"]:
            rates.append(b * length / (time.perf_counter() - start))
        losses.append(float(loss.detach()))
    del opt
    tokens_per_s = statistics.median(rates)
    params = sum(p.numel() for p in lm.parameters())
    achieved = flops_per_token(lm.config, params, length) * tokens_per_s
    return {
        "batch": b,
        "length": length,
        "steps_timed": len(rates),
        "tokens_per_s": round(tokens_per_s, 1),
        "model_flops_per_s": round(achieved),
        "model_tflops": round(achieved / 1e12, 3),
        "mfu": round(achieved / peak, 4),
        "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)],
        "precision": "torch.autocast bf16 over fp32 weights, AdamW (lmrl pretrain's dtype: bfloat16)",
    }


def pad_id(config: Any) -> int:
    """The model's pad token id (its EOS when it has none, as :func:`lmrl.policies.lm.load_lm` sets)."""
    return int(config.pad_token_id if config.pad_token_id is not None else config.eos_token_id)


def prompts(vocab: int, batch: int, length: int, device: str, pad: int, seed: int = 0):
    """Left-padded random prompts of ``length/2 .. length`` tokens: ``(ids, mask)`` on ``device``.

    Args:
        vocab: Vocabulary size (ids are drawn from ``3 .. vocab - 1``).
        batch: Number of prompts.
        length: The longest prompt (the padded width).
        device: Where the tensors go.
        pad: The pad id written left of each prompt.
        seed: Seed of the draw.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, length), generator=gen)
    lengths = torch.randint(length // 2, length + 1, (batch,), generator=gen)
    mask = (torch.arange(length)[None, :] >= (length - lengths)[:, None]).long()
    ids = ids * mask + pad * (1 - mask)
    return ids.to(device), mask.to(device)


def generation(lm, sizes: dict[str, Any], device: str) -> dict[str, Any]:
    """New tokens/s of lm_ops.sample and transformers generate, same bf16 model, prompts, length."""
    import torch

    from lmrl.policies import lm_ops

    lm = lm.to(torch.bfloat16).eval()
    b, new = sizes["gen_batch"], sizes["gen_new_tokens"]
    pad, eos = pad_id(lm.config), int(lm.config.eos_token_id)
    ids, mask = prompts(lm.config.vocab_size, b, sizes["gen_prompt"], device, pad)
    gen = torch.Generator(device=device).manual_seed(0)

    def ours() -> None:
        tokens, _, _ = lm_ops.sample(lm, ids, mask, new, eos, generator=gen)
        assert tokens.shape == (b, new)
        _sync(device)

    def theirs() -> None:
        with torch.no_grad():
            out = lm.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                top_p=1.0, max_new_tokens=new, min_new_tokens=new, pad_token_id=pad, eos_token_id=eos,
            )  # fmt: skip
        assert out.shape == (b, ids.shape[1] + new)
        _sync(device)

    times = common.interleaved({"lmrl": ours, "hf": theirs}, sizes["gen_repeats"])
    return {
        "batch": b,
        "prompt_tokens": int(ids.shape[1]),
        "new_tokens": new,
        "dtype": "bfloat16 weights",
        "lmrl_tokens_per_s": round(b * new / times["lmrl"], 1),
        "hf_tokens_per_s": round(b * new / times["hf"], 1),
        "ratio": common.ratio(times["hf"], times["lmrl"]),
    }


def ppo_update(lm, sizes: dict[str, Any], device: str) -> dict[str, Any]:
    """Times rollout, reference pass and PPO update of a LoRA policy (the learner on ``device``)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lmrl.policies import lm_ops

    base = lm.to(torch.bfloat16)
    for p in base.parameters():
        p.requires_grad_(False)
    r = sizes["lora_r"]
    policy = get_peft_model(  # every linear layer but the head (Llama: q k v o gate up down)
        base, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear")
    )
    targets = sorted({name.rsplit(".", 1)[-1] for name in policy.peft_config["default"].target_modules})
    trainable = [p for p in policy.parameters() if p.requires_grad]
    for p in trainable:  # the adapters learn in fp32; the frozen base stays bf16
        p.data = p.data.float()
    opt = torch.optim.AdamW(trainable, lr=1e-5)
    b, new, n_mb = sizes["ppo_batch"], sizes["ppo_new_tokens"], sizes["ppo_minibatches"]
    vocab, eos = base.config.vocab_size, int(base.config.eos_token_id)
    gen = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast(device, dtype=torch.bfloat16)
    iterations = []
    for it in range(1 + sizes["ppo_iterations"]):  # the first one warms up, untimed
        ids, mask = prompts(vocab, b, sizes["ppo_prompt"], device, pad_id(base.config), 100 + it)
        t0 = time.perf_counter()
        policy.eval()
        with autocast:
            tokens, old_logits, _ = lm_ops.sample(policy, ids, mask, new, eos, generator=gen)
        old_logp = _token_logp(old_logits, tokens)
        reward = (tokens < vocab // 2).float().mean(-1)  # stand-in reward: times only
        adv = (reward - reward.mean()) / (reward.std() + 1e-6)
        _sync(device)
        t1 = time.perf_counter()
        with torch.no_grad(), autocast, policy.disable_adapter():
            ref_logits, _ = lm_ops.teacher_force(policy, ids, mask, tokens, eos)
        ref_logp = _token_logp(ref_logits, tokens)
        _sync(device)
        t2 = time.perf_counter()
        policy.train()
        stats = []
        for rows in torch.arange(b, device=device).chunk(n_mb):
            with autocast:
                logits, _ = lm_ops.teacher_force(policy, ids[rows], mask[rows], tokens[rows], eos)
            loss, clipped = _ppo_loss(
                _token_logp(logits, tokens[rows]), old_logp[rows], ref_logp[rows], adv[rows],
                (~lm_ops.done_before(tokens[rows], eos)).float(),
            )  # fmt: skip
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            stats.append((float(loss.detach()), clipped))
        _sync(device)
        t3 = time.perf_counter()
        if it > 0:
            iterations.append({"rollout_s": t1 - t0, "reference_s": t2 - t1, "update_s": t3 - t2,
                               "iteration_s": t3 - t0, "first_minibatch_loss": stats[0][0],
                               "first_minibatch_clipped_share": stats[0][1]})  # fmt: skip
    med = {k: round(statistics.median(i[k] for i in iterations), 4) for k in iterations[0]}
    lora_params = sum(p.numel() for p in trainable)
    return {
        "learner": "plain torch + peft in one process (not RLlib's learner): lm_ops.sample rollout, "
        "reference with LoRA disabled, token-level clipped PPO surrogate + k3 KL over "
        "lm_ops.teacher_force, AdamW on the LoRA weights",
        "reward": "stand-in (share of sampled ids below vocab/2), for timing only",
        "batch": b,
        "prompt_tokens": int(sizes["ppo_prompt"]),
        "new_tokens": new,
        "minibatches": n_mb,
        "lora": {"r": r, "alpha": 2 * r, "target_modules": targets, "trainable_params": lora_params},
        "precision": "bf16 frozen base, fp32 LoRA weights, autocast bf16",
        "iterations_timed": len(iterations),
        "median": med,
        "update_tokens_per_s": round(b * new / med["update_s"], 1),
        "rollout_tokens_per_s": round(b * new / med["rollout_s"], 1),
    }


def _token_logp(logits, tokens):
    import torch

    return torch.log_softmax(logits.float(), -1).gather(2, tokens.unsqueeze(-1))[..., 0]


def _ppo_loss(logp, old_logp, ref_logp, adv, live, clip: float = 0.2, kl_coeff: float = 0.05):
    """PPO's token-level clipped surrogate plus ``kl_coeff`` times the k3 KL to the reference."""
    import torch

    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(-1)
    surrogate = torch.min(a * ratio, a * torch.clamp(ratio, 1 - clip, 1 + clip))
    delta = ref_logp - logp
    kl = torch.exp(delta) - delta - 1.0
    n = live.sum().clamp(min=1.0)
    loss = -(surrogate * live).sum() / n + kl_coeff * (kl * live).sum() / n
    clipped = float((((ratio - 1.0).abs() > clip).float() * live).sum() / n)
    return loss, clipped


def run_part(
    part: str, model: str | None, smoke: bool, device: str, sizes: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One measure on a freshly built model: ``(its results, the model's description)``.

    Args:
        part: One of :data:`PARTS`.
        model: ``--model``, or None.
        smoke: ``--cpu-smoke``.
        device: ``"cuda"`` or ``"cpu"``.
        sizes: :data:`GPU_SIZES`, :data:`QUICK_SIZES` or :data:`SMOKE_SIZES`.
    """
    lm, described = build_model(model, smoke, device)
    if part == "mfu":
        peak = matmul_peak(device, sizes["matmul"])
        out = pretrain_mfu(lm, sizes, device, peak)
        out.update(bf16_matmul_peak_flops=round(peak), bf16_matmul_peak_tflops=round(peak / 1e12, 2),
                   matmul_size=sizes["matmul"])  # fmt: skip
    elif part == "generation":
        out = generation(lm, sizes, device)
    elif part == "ppo":
        out = ppo_update(lm, sizes, device)
    else:
        raise ValueError(f"unknown part `{part}`; choose from {', '.join(PARTS)}")
    return out, described


def main(argv: list[str] | None = None) -> int:
    """Runs the chosen measures and writes ``OUT/gpu.json``; returns the exit status."""
    args = build_parser().parse_args(argv)
    missing = missing_packages()
    if missing:
        print(
            f"error: {', '.join(missing)} not installed for {sys.executable}; "
            f"{sys.executable} -m pip install {' '.join(missing)}",
            file=sys.stderr,
        )
        return EXIT_MISSING
    import torch

    if args.cpu_smoke:
        args.quick = True
    elif not torch.cuda.is_available():
        print(no_gpu_message(), file=sys.stderr)
        return EXIT_NO_GPU
    started = common.setup(args)
    device = "cpu" if args.cpu_smoke else "cuda"
    sizes = SMOKE_SIZES if args.cpu_smoke else QUICK_SIZES if args.quick else GPU_SIZES
    parts = [p for p in PARTS if not args.only or p in args.only]
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    default = "tiny Llama" if args.cpu_smoke else "SmolLM2-135M architecture"
    model: dict[str, Any] = {"source": args.model or default, "params": 0}  # until a part builds it
    failed: list[str] = []
    for part in parts:
        if time.perf_counter() - started > args.budget_s:
            results[part] = {"skipped": f"over the {args.budget_s:g} s budget before it started"}
            continue
        t = time.perf_counter()
        try:
            results[part], model = run_part(part, args.model, args.cpu_smoke, device, sizes)
        except KeyboardInterrupt:  # gpu.sh's time limit: keep what was measured
            results[part] = {"error": "interrupted (time limit)"}
            failed.append(part)
            break
        except Exception as exc:  # noqa: BLE001 -- one part failing (e.g. out of memory) keeps the others
            results[part] = {"error": f"{type(exc).__name__}: {str(exc).strip()[:500]}"}
            failed.append(part)
            print(f"error: {part} failed: {results[part]['error']}", file=sys.stderr, flush=True)
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
        seconds[part] = round(time.perf_counter() - t, 1)
        print(f"{part}: {seconds[part]} s", flush=True)
    if device == "cuda":
        model["max_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    mfu, gen, ppo = (results.get(k, {}) for k in PARTS)
    rows = [
        ["bf16 matmul peak (TFLOP/s)", mfu.get("bf16_matmul_peak_tflops"), f"{sizes['matmul']}^3"],
        ["pretraining tokens/s", mfu.get("tokens_per_s"),
         f"batch {sizes['pretrain_batch']} x {sizes['pretrain_length']}, bf16 autocast"],
        ["pretraining MFU", mfu.get("mfu"), "6N + 12LTd FLOPs/token x tokens/s / matmul peak"],
        ["generation tokens/s, lmrl sample", gen.get("lmrl_tokens_per_s"),
         f"batch {sizes['gen_batch']}, {sizes['gen_new_tokens']} new tokens, bf16"],
        ["generation tokens/s, transformers generate", gen.get("hf_tokens_per_s"), "same model and prompts"],
        ["PPO LoRA iteration s (rollout + ref + update)", ppo.get("median", {}).get("iteration_s"),
         f"batch {sizes['ppo_batch']}, {sizes['ppo_new_tokens']} new tokens, torch+peft learner"],
        ["PPO LoRA update s", ppo.get("median", {}).get("update_s"),
         f"{sizes['ppo_minibatches']} minibatches, r={sizes['lora_r']}"],
    ]  # fmt: skip
    common.report(
        "gpu",
        args,
        title=f"GPU ({common.machine()['cuda'] or 'CPU smoke: tiny sizes, not a measure'}): "
        f"{model['source']}" + (f", {model['params'] / 1e6:.2f}M parameters" if model["params"] else ""),
        columns=["measure", "value", "how"],
        rows=rows,
        lmrl={"pretrain": mfu, "generation": gen, "ppo": ppo},
        baseline={"bf16_matmul_peak_tflops": mfu.get("bf16_matmul_peak_tflops"),
                  "generate_tokens_per_s": gen.get("hf_tokens_per_s"), "name": "transformers generate"},
        ratio_value=gen.get("ratio"),
        ratio_meaning=f"lmrl sample tokens/s / transformers generate tokens/s at batch "
        f"{sizes['gen_batch']}, bf16, on {device}",
        extra={"cpu_smoke": bool(args.cpu_smoke), "device": device, "model": model,
               "sizes": sizes, "part_seconds": seconds},
        started=started,
    )  # fmt: skip
    if failed:
        print(f"error: {', '.join(failed)} failed (see their `error` in the JSON)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
