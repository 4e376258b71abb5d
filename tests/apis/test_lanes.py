"""Responses and Messages requests wait in the same priority line as chat completions: one
deployment serving one call at a time, a blocker holding it, then four waiters of all three
formats, which the upstream must receive in priority order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, start_gateway

SENT = "lanes-fake+gate=apis-lanes"
"""The model as the upstream sees it (and counts it)."""
MODEL = f"hosted_vllm/{SENT}"


@pytest.fixture(scope="module")
def lanes_gw(fake_openai: FakeUpstream) -> Iterator[Gateway]:
    config = {"model_list": [{"model_name": "lane", "litellm_params": {
        "model": MODEL, "api_base": fake_openai.url, "api_key": "x",
        "max_parallel_requests": 1}}],
        "router_settings": {"timeout": 30}}
    gateway = start_gateway(config)
    yield gateway
    gateway.stop()


def _waiting(gw: Gateway) -> int:
    groups = httpx.get(f"{gw.url}/queue/status", timeout=5).json()["groups"]
    return sum(g["waiting"] for g in groups)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_one_line_for_all_formats(lanes_gw: Gateway, fake_openai: FakeUpstream) -> None:
    url = lanes_gw.url
    chat = "/v1/chat/completions"
    sends: list[tuple[str, str, dict, dict]] = [
        ("blocker", chat, {"messages": [{"role": "user", "content": "blocker"}]}, {}),
        ("chat-5", chat, {"messages": [{"role": "user", "content": "chat-5"}], "priority": 5},
         {}),
        ("messages-3", "/v1/messages", {"max_tokens": 10, "messages": [
            {"role": "user", "content": "messages-3"}]}, {"x-laneway-priority": "3"}),
        ("responses-1", "/v1/responses", {"input": "responses-1", "priority": 1}, {}),
        ("chat-2", chat, {"messages": [{"role": "user", "content": "chat-2"}]},
         {"x-laneway-priority": "2"}),
    ]
    statuses: dict[str, int] = {}

    def send(name: str, path: str, body: dict, headers: dict) -> None:
        r = httpx.post(url + path, json={"model": "lane", **body}, headers=headers, timeout=30)
        statuses[name] = r.status_code

    threads = []
    with fake_openai.gate("apis-lanes"):
        for i, (name, path, body, headers) in enumerate(sends):
            t = threading.Thread(target=send, args=(name, path, body, headers))
            t.start()
            threads.append(t)
            if i == 0:
                _until(lambda: fake_openai.counts().get(SENT, 0) >= 1, "blocker upstream")
            else:
                _until(lambda i=i: _waiting(lanes_gw) >= i, f"{name} in line")
    for t in threads:
        t.join(30)
    assert statuses == dict.fromkeys(statuses, 200) and len(statuses) == 5
    arrived = sorted((r for r in fake_openai.requests() if r["body"].get("model") == SENT),
                     key=lambda r: r["t"])
    order = [r["body"]["messages"][-1]["content"] for r in arrived][-5:]
    assert order == ["blocker", "responses-1", "chat-2", "messages-3", "chat-5"]


def test_the_priority_header_is_checked_like_the_field(lanes_gw: Gateway) -> None:
    for path, body in (("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
                       ("/v1/responses", {"input": "x"})):
        r = httpx.post(lanes_gw.url + path, json={"model": "lane", **body},
                       headers={"x-laneway-priority": "soon"}, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["param"] == "priority"
    r = httpx.post(lanes_gw.url + "/v1/messages", headers={"x-laneway-priority": "99999999"},
                   json={"model": "lane", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
