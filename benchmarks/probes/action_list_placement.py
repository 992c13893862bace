"""Where to list the admissible actions in the chat: the policy's probability on the expert's action.

Usage: python benchmarks/probes/action_list_placement.py ENV_ID N system,user
(N states reached by a random walk from seeds 100+). docs/results.md records its output.
"""

import json
import sys
from dataclasses import replace

import numpy as np
import torch

import lmrl.envs as E
from lmrl.envs import adapter as A
from lmrl.envs.agents import ExpertAgent, RandomAgent
from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.evaluate import zero_shot_policy

torch.set_num_threads(1)
env_id = sys.argv[1]
n = int(sys.argv[2])
layouts = sys.argv[3].split(",")
cfg = RunConfig.model_validate(
    {"env": {"id": env_id}, "policy": {"model": "smollm2-135m-instruct", "action_mode": "choose"}}
)
pol = zero_shot_policy(cfg)
# states visited by a random walk, with the expert's action in each
obs_list, exp = [], []
rnd, ex = RandomAgent(0), ExpertAgent()
for s in range(n):
    env = E.make(env_id)
    o, info = env.reset(seed=100 + s)
    k = s % 4
    for _ in range(k):
        o, r, t, tr, info = env.step(rnd.act(o, info, env))
        if t or tr:
            o, info = env.reset(seed=100 + s)
            break
    obs_list.append(o)
    exp.append(ex.act(o, info, env))


def orig(self, text, actions=()):
    listed = "\n".join(f"- {a}" for a in actions[: self.config.max_candidates])
    return [
        {
            "role": "system",
            "content": (self.config.chat_system or "") + f"\n\nAdmissible actions:\n{listed}",
        },
        {"role": "user", "content": text},
    ]


def user_list(self, text, actions=()):
    listed = "\n".join(f"- {a}" for a in actions[: self.config.max_candidates])
    return [
        {"role": "system", "content": self.config.chat_system or ""},
        {"role": "user", "content": f"{text}\n\nAdmissible actions:\n{listed}"},
    ]


def no_list(self, text, actions=()):
    return [
        {"role": "system", "content": self.config.chat_system or ""},
        {"role": "user", "content": text},
    ]


for lay in layouts:
    A.TextCodec.chat_messages = {"system": orig, "user": user_list, "none": no_list}[lay]
    for scoring in ("sum",):
        pol.adapter = replace(pol.adapter, choice_scoring=scoring)
        pol.codec = A.TextCodec(pol.tokenizer, pol.adapter)
        probs = []
        for i in range(0, n, 8):
            probs += pol.choice_probs(obs_list[i : i + 8])
        pe = [
            p[o["actions"].index(e)] if e in o["actions"] else 0
            for p, o, e in zip(probs, obs_list, exp, strict=True)
        ]
        agree = [o["actions"][int(np.argmax(p))] == e for p, o, e in zip(probs, obs_list, exp, strict=True)]
        ent = np.mean([-(np.array(p) * np.log(np.array(p) + 1e-12)).sum() for p in probs])
        unif = np.mean([1 / len(o["actions"]) for o in obs_list])
        print(
            json.dumps(
                dict(
                    env=env_id,
                    layout=lay,
                    scoring=scoring,
                    p_expert=round(float(np.mean(pe)), 3),
                    greedy_agree=round(float(np.mean(agree)), 3),
                    uniform=round(float(unif), 3),
                    entropy=round(float(ent), 3),
                )
            ),
            flush=True,
        )
