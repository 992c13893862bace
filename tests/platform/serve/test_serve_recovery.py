"""A crashed policy replica is replaced, and clients that retry never see a failure."""

from __future__ import annotations

import sys
import threading
import time

import openai
import pytest
import serve_helpers as h

APP = "recover"
MESSAGES = [{"role": "user", "content": "Hi, I need some help."}]


@pytest.fixture(scope="module")
def url(ray_session, tiny_model_dir, tmp_path_factory):
    policy = h.export_random_policy(tiny_model_dir, tmp_path_factory.mktemp("recover") / "export", "choose")
    (base,) = h.deploy([(h.config(policy, replicas=2, model_name=APP), APP, "/recover")])
    yield base
    h.undeploy([APP])


def policy_replicas() -> set[str]:
    """Names of the live PolicyModel replica actors of the app."""
    import ray

    return {
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::{APP}#PolicyModel#")
    }


def running_replicas() -> int:
    from ray import serve

    states = serve.status().applications[APP].deployments["PolicyModel"].replica_states
    return sum(n for state, n in states.items() if str(getattr(state, "value", state)) == "RUNNING")


def _wait(condition, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def test_killed_replica_is_replaced_while_requests_flow(url):
    import ray

    before = policy_replicas()
    assert len(before) == 2
    stop, done, failures = threading.Event(), [], []

    def client_loop() -> None:
        c = openai.OpenAI(base_url=url + "/v1", api_key=h.KEY, max_retries=10, timeout=30)
        while not stop.is_set():
            try:
                reply = c.chat.completions.create(model=APP, messages=MESSAGES, temperature=0)
                done.append(reply.choices[0].message.content)
            except Exception as exc:  # any failure that survived the client's retries
                failures.append(repr(exc))

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: len(done) >= 20, 120, "requests to flow")
        victim = sorted(before)[0]
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        served_at_kill = len(done)
        replaced_s = _wait(
            lambda: victim not in policy_replicas() and len(policy_replicas()) == 2 and running_replicas() == 2,
            120,
            "a replacement replica",
        )
        _wait(lambda: len(done) >= served_at_kill + 40, 120, "requests after the replacement")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:3]
    assert len(set(done)) == 1  # greedy: every replica gives the same reply
    assert policy_replicas() - before  # a new replica is serving
    print(f"replacement replica running {replaced_s:.1f} s after the kill; {len(done)} requests, 0 failed", file=sys.stderr)
