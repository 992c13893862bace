"""Zero-shot choose-mode calibration of SmolLM2: policy entropy and greedy success per prompt and score.

Usage: python benchmarks/probes/choose_calibration.py ENV_IDS N   (ENV_IDS comma-separated; seeds 1000+).
Prints one JSON line per (env, prompt, score); docs/results.md records its output.
"""

import json
import math
import sys
import time

import torch

import lmrl.envs as E
from lmrl.envs import catalog
from lmrl.envs.adapter import AdapterConfig, env_instructions
from lmrl.pipelines.evaluate import run_policy_episodes
from lmrl.policies.lm import load_lm
from lmrl.policies.text_policy import TextPolicy

torch.set_num_threads(1)
lm, tok = load_lm("/tmp/lmrlcache/smollm2-135m-instruct")
envs = sys.argv[1].split(",")
n = int(sys.argv[2])
for env_id in envs:
    doc = catalog.env_info(env_id)["doc"]
    for chat in (True, False):
        for scoring in ("sum", "mean"):
            ad = AdapterConfig(
                action_mode="choose",
                max_prompt_tokens=512,
                max_candidate_tokens=16,
                chat_system=env_instructions(doc) if chat else None,
                choice_scoring=scoring,
            )
            pol = TextPolicy(lm, tok, ad)
            obs = []
            for s in range(n):
                e = E.make(env_id)
                o, _ = e.reset(seed=1000 + s)
                obs.append(o)
            t = time.time()
            probs = pol.choice_probs(obs)
            ent = sum(-sum(p * math.log(max(p, 1e-12)) for p in ps) for ps in probs) / len(probs)
            uni = sum(math.log(len(o["actions"])) for o in obs) / len(obs)
            rep = run_policy_episodes(pol, env_id, n, seed=1000, greedy=True)
            print(
                json.dumps(
                    dict(
                        env=env_id,
                        chat=chat,
                        scoring=scoring,
                        entropy=round(ent, 3),
                        uniform=round(uni, 3),
                        greedy=rep.success_rate,
                        len=rep.mean_length,
                        s=round(time.time() - t, 1),
                        ptoks=int(pol.encode(obs[:1])["prompt_mask"].sum()),
                    )
                ),
                flush=True,
            )
