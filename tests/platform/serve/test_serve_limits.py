"""Overload and timeouts of a live deployment: 503 with Retry-After, and 408, as OpenAI-style errors."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
import serve_helpers as h

BODY = {"messages": [{"role": "user", "content": "Hi, I need some help."}]}


@pytest.fixture(scope="module")
def urls(ray_session, tiny_model_dir, tmp_path_factory):
    """Two deliberately slow deployments: every request waits 1 s for a batch that never fills.

    ``busy`` works on one request at a time and queues one more; ``hasty``
    gives up on a request after 0.2 s.
    """
    policy = h.export_random_policy(tiny_model_dir, tmp_path_factory.mktemp("limits") / "export", "choose")
    slow = {"max_batch_size": 4, "batch_wait_timeout_s": 1.0, "model_name": "limits"}
    apps = [
        (h.config(policy, max_ongoing_requests=1, max_queued_requests=1, retry_after_s=2, **slow), "busy", "/busy"),
        (h.config(policy, request_timeout_s=0.2, **slow), "hasty", "/hasty"),
    ]
    busy, hasty = h.deploy(apps)
    yield {"busy": busy, "hasty": hasty}
    h.undeploy([name for _, name, _ in apps])


def _post(url: str) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {h.KEY}"}, timeout=60)


def test_overload_gets_503_with_retry_after(urls):
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: _post(urls["busy"]), range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    # At least the request in progress is served; whether the queued one also is
    # depends on when the proxy sees the replica's queue fill, so it is not asserted.
    assert statuses.count(503) >= 5, statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "2"
            error = r.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "overloaded"
    assert _post(urls["busy"]).status_code == 200  # served again once the load is gone


def test_slow_request_gets_408(urls):
    resp = _post(urls["hasty"])
    assert resp.status_code == 408
    error = resp.json()["error"]
    assert error["code"] == "request_timeout" and "0.2 s" in error["message"]


def test_openai_client_sees_the_statuses(urls):
    import openai

    c = openai.OpenAI(base_url=urls["hasty"] + "/v1", api_key=h.KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="limits", messages=BODY["messages"])
    assert err.value.status_code == 408
