"""The OpenAI-compatible API of a live Serve deployment on loopback, through real HTTP.

Two policies are deployed side by side (choose and generate mode, tiny
untrained weights: what is tested here is the serving, not the policy).
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import sys
import time
from types import SimpleNamespace

import httpx
import openai
import pytest
import serve_helpers as h
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmrl.envs
from lmrl.envs.agents import RandomAgent
from lmrl.platform.serve.app import BATCH_HEADER
from lmrl.policies.text_policy import TextPolicy

CONTEXT = 512  # the tiny preset's positions


@pytest.fixture(scope="module")
def served(ray_session, tiny_model_dir, tmp_path_factory):
    """Choose- and generate-mode CustomerSupport policies, each its own Serve application."""
    paths = {
        mode: h.export_random_policy(tiny_model_dir, tmp_path_factory.mktemp(f"api-{mode}") / "export", mode)
        for mode in ("choose", "generate")
    }
    apps = [(h.config(paths[m], model_name=f"cs-{m}"), f"api-{m}", f"/{m}") for m in paths]
    urls = h.deploy(apps)
    yield SimpleNamespace(
        url=dict(zip(paths, urls, strict=True)),
        path=paths,
        policy={m: TextPolicy.from_pretrained(p) for m, p in paths.items()},
    )
    h.undeploy([name for _, name, _ in apps])


@pytest.fixture(scope="module")
def http():
    with httpx.Client(timeout=60) as client:
        yield client


def auth(key: str = h.KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client(served, mode: str = "choose", key: str = h.KEY, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url[mode] + "/v1", api_key=key, max_retries=0, timeout=60, **kwargs)


def episode_histories(seeds=range(3), max_turns: int = 8):
    """(full chat history, env observation) at each step of random CustomerSupport play."""
    for seed in seeds:
        env = lmrl.envs.make(h.CS)
        agent = RandomAgent(seed)
        obs, info = env.reset(seed=seed)
        messages = [{"role": "user", "content": obs["text"].removeprefix("Customer: ")}]
        for _ in range(max_turns):
            yield list(messages), obs
            action = agent.act(obs, info, env)
            obs, _, terminated, truncated, info = env.step(action)
            customer = obs["text"].splitlines()[-1].removeprefix("Customer: ")
            messages += [{"role": "assistant", "content": action}, {"role": "user", "content": customer}]
            if terminated or truncated:
                break


# --- the official openai client -----------------------------------------------------------


def test_models_and_health(served, http):
    models = client(served).models.list()
    assert [m.id for m in models.data] == ["cs-choose"]
    card = models.data[0].model_dump()
    assert card["env_id"] == h.CS and card["action_mode"] == "choose" and card["context_length"] == CONTEXT
    assert client(served).models.retrieve("cs-choose").id == "cs-choose"
    health = http.get(served.url["generate"] + "/healthz")  # no key needed
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "action_mode": "generate", "model": "cs-generate"}


def test_chat_with_the_openai_client(served):
    actions = lmrl.envs.make(h.CS).unwrapped.actions
    resp = client(served).chat.completions.create(
        model="cs-choose",
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi, I need some help."}],
        temperature=0,
    )
    assert resp.object == "chat.completion" and resp.model == "cs-choose"
    (choice,) = resp.choices
    assert choice.message.role == "assistant" and choice.message.content in actions
    assert choice.finish_reason == "stop"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_streaming_matches_the_full_reply(served, mode):
    messages = [{"role": "user", "content": "Where is my order?"}]
    c = client(served, mode)
    full = c.chat.completions.create(model=f"cs-{mode}", messages=messages, temperature=0, n=2)
    stream = c.chat.completions.create(
        model=f"cs-{mode}", messages=messages, temperature=0, n=2, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage, roles = {0: "", 1: ""}, {}, None, set()
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text[choice.index] += choice.delta.content or ""
            roles.add(choice.delta.role)
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert [text[i] for i in (0, 1)] == [ch.message.content for ch in full.choices]
    assert finish == {i: ch.finish_reason for i, ch in enumerate(full.choices)}
    assert "assistant" in roles
    assert usage is not None and usage.total_tokens == full.usage.total_tokens


def test_text_completions(served):
    resp = client(served, "generate").completions.create(
        model="cs-generate", prompt=["Customer: Hi.", "Customer: Where is my parcel?"], n=2, temperature=0, max_tokens=4
    )
    assert resp.object == "text_completion"
    assert [c.index for c in resp.choices] == [0, 1, 2, 3]
    assert resp.choices[0].text == resp.choices[1].text  # greedy: the n choices agree
    assert all(c.finish_reason in ("stop", "length") for c in resp.choices)


# --- served reply == the policy's action in its env -----------------------------------------


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_served_greedy_reply_equals_local_policy_action(served, http, mode):
    policy = served.policy[mode]
    c = client(served, mode)
    checked = 0
    for messages, obs in episode_histories():
        local = policy.act([obs], greedy=True)[0]
        reply = c.chat.completions.create(model=f"cs-{mode}", messages=messages, temperature=0)
        assert reply.choices[0].message.content == local, (messages, obs["text"])
        act = http.post(served.url[mode] + "/v1/act", json={"observation": obs["text"]}, headers=auth()).json()
        assert act["action"] == local and act["action_mode"] == mode
        completion = c.completions.create(model=f"cs-{mode}", prompt=obs["text"], temperature=0)
        assert completion.choices[0].text == local
        checked += 1
    assert checked >= 12  # long dialogues, beyond the env's 6-line window, are among them


def test_act_logprob_is_the_policy_probability(served, http):
    import math

    policy = served.policy["choose"]
    for _, obs in list(episode_histories(seeds=[0]))[:3]:
        probs = policy.choice_probs([obs])[0]
        body = {"observation": obs["text"], "admissible_actions": list(obs["actions"])}
        act = http.post(served.url["choose"] + "/v1/act", json=body, headers=auth()).json()
        assert act["action_index"] == max(range(len(probs)), key=probs.__getitem__)
        assert act["logprob"] == pytest.approx(math.log(probs[act["action_index"]]), abs=1e-5)
    sampled = http.post(
        served.url["choose"] + "/v1/act",
        json={"observation": "Customer: Hi.", "admissible_actions": ["yes", "no"], "greedy": False, "seed": 1},
        headers=auth(),
    ).json()
    assert sampled["action"] in ("yes", "no") and sampled["logprob"] < 0


# --- sampling parameters --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["choose", "generate"])
def test_seed_n_max_tokens_stop_are_honoured(served, mode):
    c = client(served, mode)
    messages = [{"role": "user", "content": "Hi, I need some help."}]

    def texts(**kw):
        return [ch.message.content for ch in c.chat.completions.create(model=f"cs-{mode}", messages=messages, **kw).choices]

    first = texts(n=4, temperature=1.5, seed=11)
    assert len(first) == 4 and texts(n=4, temperature=1.5, seed=11) == first
    assert texts(temperature=1.5, top_p=1e-6, seed=3) == texts(temperature=0)
    short = c.chat.completions.create(model=f"cs-{mode}", messages=messages, temperature=0, max_tokens=1)
    assert short.usage.completion_tokens <= 1
    greedy = texts(temperature=0)[0]
    if len(greedy) > 2:
        cut = texts(temperature=0, stop=[greedy[1:3]])[0]
        assert cut == greedy[: greedy.index(greedy[1:3])]


# --- auth -----------------------------------------------------------------------------------


def test_auth_401_without_or_with_a_wrong_key_200_with_the_right_one(served, http):
    url = served.url["choose"] + "/v1/chat/completions"
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    for headers in ({}, auth("wrong-key"), {"Authorization": h.KEY}, {"Authorization": "Basic " + h.KEY}):
        resp = http.post(url, json=body, headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["error"]["code"] == "invalid_api_key"
        assert resp.headers["www-authenticate"] == "Bearer"
    assert http.get(served.url["choose"] + "/v1/models").status_code == 401
    assert http.post(url, json=body, headers=auth()).status_code == 200
    with pytest.raises(openai.AuthenticationError) as err:
        client(served, key="wrong-key").models.list()
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"


# --- validation -----------------------------------------------------------------------------

USER = [{"role": "user", "content": "Hi"}]
INVALID = {
    "malformed JSON": (b'{"messages": [', None, "invalid_json"),
    "not an object": (b"[1, 2]", None, "invalid_json"),
    "NaN": (b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}', None, "invalid_json"),
    "wrong type": ({"messages": USER, "temperature": "hot"}, "temperature", None),
    "string number": ({"messages": USER, "max_tokens": "5"}, "max_tokens", None),
    "bool as int": ({"messages": USER, "n": True}, "n", None),
    "unknown role": ({"messages": [{"role": "bot", "content": "Hi"}]}, "messages[0].role", None),
    "tool message": ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", None),
    "missing messages": ({"model": "cs-choose"}, "messages", None),
    "empty messages": ({"messages": []}, "messages", None),
    "content not text": ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", None),
    "image part": ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, None, None),
    "prompt beyond the context": ({"messages": [{"role": "user", "content": "order " * 2000}]}, "messages", "context_length_exceeded"),
    "max_tokens over the limit": ({"messages": USER, "max_tokens": 33}, "max_tokens", None),
    "max_tokens zero": ({"messages": USER, "max_tokens": 0}, "max_tokens", None),
    "n too large": ({"messages": USER, "n": 5}, "n", None),
    "temperature too high": ({"messages": USER, "temperature": 2.5}, "temperature", None),
    "top_p zero": ({"messages": USER, "top_p": 0}, "top_p", None),
    "too many stops": ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop", None),
    "unknown field": ({"messages": USER, "tools": []}, "tools", None),
    "penalty": ({"messages": USER, "presence_penalty": 1.0}, "presence_penalty", None),
    "logprobs": ({"messages": USER, "logprobs": True}, "logprobs", None),
    "too many actions": ({"messages": USER, "admissible_actions": [f"a{i}" for i in range(9)]}, "admissible_actions", None),
    "huge seed": ({"messages": USER, "seed": 2**70}, "seed", None),
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content", None),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_chat_requests_get_400_with_an_openai_error_body(served, http, case):
    body, param, code = INVALID[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = http.post(
        served.url["choose"] + "/v1/chat/completions",
        content=content,
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error


def test_other_endpoints_validate_too(served, http):
    url = served.url["choose"]
    cases = [
        ("/v1/act", {"observation": 3}, "observation"),
        ("/v1/act", {"observation": "x", "admissible_actions": []}, "admissible_actions"),
        ("/v1/completions", {"prompt": [1, 2, 3]}, "prompt"),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo"),
        ("/v1/completions", {"prompt": ["x"] * 5, "n": 2}, "prompt"),  # 10 rows > max_batch_size 8
        ("/v1/completions", {"prompt": "order " * 2000}, "prompt"),
    ]
    for path, body, param in cases:
        resp = http.post(url + path, json=body, headers=auth())
        assert resp.status_code == 400, (path, body, resp.text)
        assert resp.json()["error"]["param"] == param, resp.json()


def test_openai_client_errors_have_statuses_and_bodies(served, http):
    c = client(served)
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model="cs-choose", messages=USER, n=9)
    assert err.value.status_code == 400 and err.value.body["param"] == "n"
    with pytest.raises(openai.NotFoundError) as err:
        c.chat.completions.create(model="gpt-4o", messages=USER)
    assert err.value.body["code"] == "model_not_found" and "cs-choose" in err.value.body["message"]
    assert http.get(served.url["choose"] + "/v1/nothing", headers=auth()).json()["error"]["type"] == "not_found_error"
    assert http.get(served.url["choose"] + "/v1/chat/completions", headers=auth()).status_code == 405
    big = http.post(served.url["choose"] + "/v1/act", content=b"x" * (2 << 20), headers=auth())
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


# --- fuzzing --------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "bot"]) | JSON, "content": st.text(max_size=40) | JSON}
)
FIELDS = {
    "model": st.sampled_from(["cs-choose", "x"]) | JSON,
    "messages": st.lists(MESSAGE, max_size=4) | JSON,
    "prompt": st.text(max_size=40) | st.lists(st.text(max_size=10), max_size=3) | JSON,
    "observation": st.text(max_size=40) | JSON,
    "admissible_actions": st.lists(st.text(max_size=10), max_size=10) | JSON,
    "max_tokens": st.integers(-2, 40) | JSON,
    "temperature": st.floats(-1, 3, allow_nan=False) | st.sampled_from([1e-300, 5e-324, 1e-5]) | JSON,
    "top_p": st.floats(-0.5, 1.5, allow_nan=False) | JSON,
    "n": st.integers(-1, 6) | JSON,
    "stop": st.text(max_size=3) | st.lists(st.text(max_size=3), max_size=5) | JSON,
    "seed": st.integers() | JSON,
    "stream": st.booleans() | JSON,
    "greedy": st.booleans() | JSON,
}
BODIES = st.one_of(
    st.fixed_dictionaries({}, optional=FIELDS).map(lambda d: json.dumps(d).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["choose", "generate"]),
    path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/act"]),
    body=BODIES,
)
def test_fuzzed_request_bodies_never_get_a_5xx(served, http, mode, path, body):
    resp = http.post(served.url[mode] + path, content=body, headers={**auth(), "Content-Type": "application/json"})
    assert resp.status_code < 500, (path, body, resp.status_code, resp.text)
    if resp.status_code >= 400:
        assert resp.json()["error"]["message"]


def test_server_is_healthy_after_the_fuzzing(served, http):
    assert http.get(served.url["choose"] + "/healthz").status_code == 200
    reply = client(served).chat.completions.create(model="cs-choose", messages=USER, temperature=0)
    assert reply.choices[0].message.content


# --- batching, metrics, the terminal client -------------------------------------------------


def test_concurrent_requests_are_decoded_in_batches(served, http):
    url = served.url["choose"] + "/v1/chat/completions"

    def one(i: int) -> tuple[int, int, float]:
        start = time.perf_counter()
        resp = http.post(url, json={"messages": USER, "seed": i, "temperature": 1.0}, headers=auth())
        return resp.status_code, int(resp.headers[BATCH_HEADER]), time.perf_counter() - start

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(64)))
    assert {status for status, _, _ in results} == {200}
    rows = [r for _, r, _ in results]
    assert max(rows) > 1, rows  # requests shared batched forward passes
    print(f"batch rows of 64 concurrent requests: max {max(rows)}, mean {sum(rows) / len(rows):.1f}", file=sys.stderr)


def test_prometheus_metrics_are_exported(served):
    from lmrl.platform.serve.launch import metrics_url

    url = metrics_url()
    assert url is not None
    wanted = ("ray_lmrl_serve_requests_total", "ray_lmrl_serve_request_latency_ms", "ray_lmrl_serve_generated_tokens_total")
    deadline, text = time.monotonic() + 90, ""
    while time.monotonic() < deadline:
        client(served).chat.completions.create(model="cs-choose", messages=USER, temperature=0)
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.HTTPError:
            text = ""
        if all(name in text for name in wanted):
            break
        time.sleep(3)
    missing = [name for name in wanted if name not in text]
    assert not missing, f"not on {url}: {missing}"
    assert 'route="/v1/chat/completions"' in text and 'status="200"' in text


def test_lmrl_chat_terminal_client(served, monkeypatch, capsys):
    from lmrl.platform.cli import main

    expected = client(served).chat.completions.create(
        model="cs-choose", messages=[{"role": "user", "content": "Hi, I need some help."}], temperature=0
    )
    monkeypatch.setenv("LMRL_API_KEY", h.KEY)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi, I need some help.\n/reset\nWhere is my order?\n/quit\n"))
    assert main(["chat", served.url["choose"], "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert "connected to cs-choose (lmrl/CustomerSupport-v0, choose mode)" in out
    assert f"policy> {expected.choices[0].message.content}\n" in out
    assert "(new conversation)" in out
    monkeypatch.setenv("LMRL_API_KEY", "wrong")
    assert main(["chat", served.url["choose"]]) == 2
    assert "HTTP 401" in capsys.readouterr().err


def test_check_health_verifies_the_model(served):
    """Serve's health check fails (and the replica gets replaced) once the model computes garbage."""
    import asyncio

    import torch

    from lmrl.platform.serve.model import PolicyModel

    replica = PolicyModel.func_or_class(served.path["choose"], 4, 0.001)
    asyncio.run(replica.check_health())
    with torch.no_grad():
        next(replica.policy.lm.parameters()).fill_(float("nan"))
    with pytest.raises(RuntimeError, match="logits are not finite"):
        asyncio.run(replica.check_health())
