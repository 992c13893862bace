"""Peak memory of generate mode's learner loss at a real vocabulary (49,152, SmolLM2's).

Usage: python benchmarks/probes/learner_logits_memory.py [ROWS] [NEW_TOKENS]
    A 2-layer Llama 64 wide with SmolLM2's vocabulary (random weights, so the
    LM's own weights are small and the (rows x T x V) logits dominate), the
    module's ``forward_train`` on ROWS prompts and T sampled tokens, the train
    distribution's ``logp`` and ``entropy`` (what PPO's loss reads), and the
    backward pass. Prints one JSON line: the peak RSS above the level before
    the forward pass, and what one (rows x T x V) fp32 tensor takes.
    Run it from two checkouts to compare code versions (BENCHMARKS.md, "Real model").
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile

import numpy as np
import torch


def main() -> None:
    from ray.rllib.core.columns import Columns
    from transformers import AutoModelForCausalLM, LlamaConfig

    from lmrl.envs.adapter import AdapterConfig, TextCodec
    from lmrl.policies.lm import disable_dropout, train_tokenizer
    from lmrl.policies.module import LMPolicyModule

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    new = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    vocab = 49_152
    torch.manual_seed(0)
    path = tempfile.mkdtemp()
    tok = train_tokenizer(["Guess the number between 1 and 16. Your guess 8 was too low."] * 8, vocab_size=300)
    tok.save_pretrained(path)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    disable_dropout(AutoModelForCausalLM.from_config(config)).save_pretrained(path)
    codec = TextCodec(tok, AdapterConfig(action_mode="generate", max_prompt_tokens=32, max_new_tokens=new))
    module = LMPolicyModule(
        observation_space=codec.observation_space(),
        action_space=codec.action_space(),
        model_config={"model_path": path, "action_mode": "generate", "max_new_tokens": new},
    )
    rng = np.random.default_rng(0)
    batch = {
        Columns.OBS: {
            "prompt_ids": torch.as_tensor(rng.integers(3, 300, (rows, 32))),
            "prompt_mask": torch.ones(rows, 32, dtype=torch.long),
        },
        Columns.ACTIONS: torch.as_tensor(rng.integers(3, vocab, (rows, new))),
    }
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the peak so far
    out = module.forward_train(batch)
    dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    loss = -dist.logp(batch[Columns.ACTIONS]).mean() - 0.01 * dist.entropy().mean()
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    one = rows * new * vocab * 4
    print(
        json.dumps(
            {
                "rows": rows,
                "new_tokens": new,
                "vocab": vocab,
                "one_logits_tensor_mb": round(one / 2**20, 1),
                "peak_above_start_mb": round((peak - base) / 1024, 1),
                "in_logits_tensors": round((peak - base) * 1024 / one, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
