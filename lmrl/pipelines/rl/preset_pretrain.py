"""Causal-LM pretraining on text our envs generate (a warm start before RL).

A randomly initialised preset knows no language: in generate mode nearly all
of its first actions are byte soup. :func:`format_corpus` renders episodes of
the *random* agent in the exact prompt format the policy sees
(``prompt ' ' action <eos>``), and :func:`pretrain_causal_lm` fits the LM to
it. The model then writes well-formed actions -- as well as the random agent
plays, no better -- and RL has to learn the task itself.

This is the single-process loop; issue #4 runs the same objective under Ray
Train across workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

import lmrl.envs
from lmrl.envs.adapter import PROMPT_FORMAT
from lmrl.envs.agents import RandomAgent


def random_play_sequences(
    env_id: str,
    tokenizer,
    episodes: int = 200,
    seed: int = 0,
    prompt_format: str = PROMPT_FORMAT,
    env_kwargs: dict | None = None,
) -> list[list[int]]:
    """Token sequences ``ids(prompt) + ids(" " + action) + [eos]`` from random play.

    The prompt and the action are tokenised separately, exactly as the adapter
    does at acting time, so the LM learns the very token boundaries it will see.
    """
    env = lmrl.envs.make(env_id, **(env_kwargs or {}))
    agent = RandomAgent(seed)
    eos = tokenizer.eos_token_id
    seqs: list[list[int]] = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        done = False
        while not done:
            action = agent.act(obs, info, env)
            prompt = tokenizer(prompt_format.format(text=obs["text"]), add_special_tokens=False)["input_ids"]
            act = tokenizer(" " + action, add_special_tokens=False)["input_ids"]
            seqs.append(list(prompt) + list(act) + [eos])
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    env.close()
    return seqs


def pretrain_causal_lm(
    model,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 1e-3,
    max_len: int = 128,
    seed: int = 0,
) -> list[float]:
    """Next-token cross-entropy on ``sequences`` (right-padded batches); returns the losses.

    Args:
        model: A causal LM (trained in place).
        sequences: Token id lists (the most recent ``max_len`` tokens are kept).
        pad_id: Padding id (masked out of the loss and attention).
        steps: Optimiser steps.
        batch_size: Sequences per step.
        lr: AdamW learning rate.
        max_len: Longest sequence kept.
        seed: Batch sampling seed.
    """
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        picks = [list(sequences[i])[-max_len:] for i in rng.integers(0, len(sequences), batch_size)]
        width = max(len(s) for s in picks)
        ids = torch.full((batch_size, width), pad_id, dtype=torch.long)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, seq in enumerate(picks):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, T-1, V)
        targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)  # (B, T-1)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses
