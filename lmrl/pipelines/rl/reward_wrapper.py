"""A reward model as an env's reward: RLHF on lmrl envs.

A run config with ``reward: {model: DIR}`` wraps every training env in
:class:`RewardModelWrapper`: each action is scored by the reward model that
``lmrl finetune`` (``task: reward_model``) wrote, on exactly the text it was
trained on -- the observation in the policy's prompt format, then
`` `` + the action, then EOS, prompt and response tokenised separately. The
score replaces the env's reward (``mode: replace``) or is added to it
(``mode: add``); the env's own reward stays in ``info["env_reward"]``, and
success is still the env's verdict, so evaluation measures the real task.

The envs layer never imports torch; this wrapper lives in ``pipelines`` and
is applied by the RLlib env creator (:class:`lmrl.pipelines.rl.builder.RLlibTextEnv`).

Example:
    >>> env = RewardModelWrapper(lmrl.envs.make("lmrl/Maze-v0"), model="runs/rm/model")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym

from lmrl.envs.adapter import PROMPT_FORMAT
from lmrl.errors import PolicyError


@functools.lru_cache(maxsize=2)
def load_reward_model(path: str):
    """``(model, tokenizer)`` of a reward-model directory, cached per process (one per env runner)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (Path(path) / "config.json").is_file():
        raise PolicyError(
            f"reward.model `{path}` is not a model directory (no config.json there); pass the `model/` "
            "folder of an `lmrl finetune` run with task reward_model"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PolicyError(f"cannot load reward.model `{path}`: {first}") from None
    if model.config.num_labels != 1:
        raise PolicyError(
            f"reward.model `{path}` has {model.config.num_labels} outputs; a reward model has one score "
            "(lmrl finetune with task reward_model writes one)"
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return model.eval(), tokenizer


def score(path: str, prompts: list[str], responses: list[str]) -> list[float]:
    """Reward-model scores of ``prompt + response`` pairs, in one batched forward pass.

    Tokenised as in training: ``ids(prompt) + ids(response) + [eos]``, keeping
    the most recent tokens when longer than the model's context.
    """
    import torch

    model, tok = load_reward_model(path)
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    p_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    r_ids = tok(responses, add_special_tokens=False)["input_ids"]
    seqs = [(list(p) + list(r) + [tok.eos_token_id])[-limit:] for p, r in zip(p_ids, r_ids, strict=True)]
    width = max(len(s) for s in seqs)
    pad = model.config.pad_token_id
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()  # (B,)


class RewardModelWrapper(gym.Wrapper):
    """Replaces (or adds to) a text env's reward with a reward model's score of each action.

    Args:
        env: A text env (``{"text", ...}`` observations, ``str`` actions).
        model: The reward-model directory.
        mode: ``replace`` or ``add``.
        scale: Multiplier of the score.
        prompt_format: How an observation becomes the prompt the model scores.
    """

    def __init__(
        self,
        env: gym.Env,
        model: str,
        mode: str = "replace",
        scale: float = 1.0,
        prompt_format: str = PROMPT_FORMAT,
    ) -> None:
        super().__init__(env)
        if mode not in ("replace", "add"):
            raise PolicyError(f"reward.mode must be replace or add, got {mode!r}")
        load_reward_model(str(model))  # fail here, in the driver's probe env, not on a runner
        self.model, self.mode, self.scale, self.prompt_format = str(model), mode, float(scale), prompt_format
        self._text = ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._text = obs["text"]
        return obs, info

    def step(self, action: str):
        prompt = self.prompt_format.format(text=self._text)
        value = score(self.model, [prompt], [" " + str(action)])[0]
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._text = obs["text"]
        shaped = self.scale * value + (float(reward) if self.mode == "add" else 0.0)
        return obs, shaped, terminated, truncated, {**info, "env_reward": float(reward), "reward_model_score": value}
