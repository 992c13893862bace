"""A trained CustomerSupport-v0 policy, served: the env's simulated customer talks to it through the API.

The policy is the tiny LM trained on the scripted expert's play, once per
session (a minute or more with the deployment: hence ``slow``). Set
``LMRL_TEST_CS_POLICY`` to a run or export directory to serve another one,
for example a PPO run of ``examples/customer_support_choose.yaml``.
"""

from __future__ import annotations

import openai
import pytest
import serve_helpers as h

import lmrl.envs
from lmrl.pipelines.evaluate import run_policy_episodes
from lmrl.policies.text_policy import TextPolicy

SEEDS = range(5_000, 5_010)  # clear of the training seeds

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def served(ray_session, tiny_model_dir, tmp_path_factory):
    policy = h.trained_cs_policy(tiny_model_dir, tmp_path_factory)
    (url,) = h.deploy([(h.config(policy, model_name="support"), "support", "/support")])
    yield policy, url
    h.undeploy(["support"])


def converse(client: openai.OpenAI, seed: int) -> tuple[bool, list[dict[str, str]]]:
    """One episode: the env's customer supplies every user turn, the served policy every reply."""
    env = lmrl.envs.make(h.CS)
    obs, info = env.reset(seed=seed)
    messages = [{"role": "user", "content": obs["text"].removeprefix("Customer: ")}]
    done = False
    while not done:
        reply = client.chat.completions.create(model="support", messages=messages, temperature=0)
        action = reply.choices[0].message.content
        obs, _, terminated, truncated, info = env.step(action)
        customer = obs["text"].splitlines()[-1].removeprefix("Customer: ")
        messages += [{"role": "assistant", "content": action}, {"role": "user", "content": customer}]
        done = terminated or truncated
    return bool(info["success"]), messages


def test_served_policy_resolves_the_customers_request(served):
    policy_dir, url = served
    client = openai.OpenAI(base_url=url + "/v1", api_key=h.KEY, max_retries=3, timeout=60)
    local = run_policy_episodes(TextPolicy.from_pretrained(policy_dir), h.CS, len(SEEDS), seed=SEEDS[0])
    outcomes = []
    for i, seed in enumerate(SEEDS):
        success, messages = converse(client, seed)
        outcomes.append(success)
        assert success == local.successes[i], (seed, messages)  # served == the policy in its env
        if success:
            assert messages[-1] == {"role": "user", "content": "Thanks, that solves it!"}
    assert sum(outcomes) >= 8, f"the trained policy resolved {sum(outcomes)}/{len(SEEDS)} conversations"
