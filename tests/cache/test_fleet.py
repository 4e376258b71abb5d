"""The response cache shared by a fleet: two gateway processes on one real Redis in front of
the loopback fake OpenAI server, whose arrival counts show what reached the upstream."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.procs import output
from tests.support.redis_server import start_redis

MASTER = "sk-master-cache-0123456789"
GROUPS = ("missed", "flight", "ttl", "controls", "stream", "scope", "rpm", "budget", "gated")
KNOBS = {"flight": "+delay=0.4", "stream": "+chunk_delay=0.01", "gated": "+gate=cache-gate"}


def upstream_model(name: str) -> str:
    return f"gpt-4o+t={name}{KNOBS.get(name, '')}"


@pytest.fixture(scope="module")
def fleet(fake_openai: FakeUpstream) -> Iterator[list[Gateway]]:
    server = start_redis()
    config: dict[str, Any] = {
        "model_list": [
            {"model_name": name, "litellm_params": {
                "model": f"openai/{upstream_model(name)}", "api_base": fake_openai.url,
                "api_key": "sk-fake-upstream", "input_cost_per_token": 0.001,
                "output_cost_per_token": 0.001}}
            for name in GROUPS],
        "router_settings": {"redis_url": server.url, "num_retries": 0},
        "litellm_settings": {"cache": True, "callbacks": ["prometheus"],
                             "cache_params": {"type": "redis", "ttl": 60}},
        "general_settings": {"master_key": MASTER},
    }
    gateways = [start_gateway(config, clean_env(), key=MASTER) for _ in range(2)]
    yield gateways
    for gw in gateways:
        gw.stop()
    server.stop()


def arrivals(fake: FakeUpstream, name: str) -> int:
    return fake.counts().get(upstream_model(name), 0)


def ask(gw: Gateway, model: str, text: str = "hi", key: str = MASTER, **kw: Any
        ) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": text}],
                            **kw})


def generate(gw: Gateway, **fields: Any) -> str:
    answer = httpx.post(f"{gw.url}/key/generate", json=fields, timeout=10,
                        headers={"authorization": f"Bearer {MASTER}"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


def test_a_miss_on_one_instance_is_a_hit_on_the_other(fleet, fake_openai) -> None:
    first = ask(fleet[0], "missed", user="alice", metadata={"tags": ["a"]})
    assert first.status_code == 200, first.text
    assert first.headers["x-litellm-cache-hit"] == "false"
    second = ask(fleet[1], "missed", user="bob", stream=False)  # neither changes the answer
    assert second.status_code == 200, second.text
    assert second.headers["x-litellm-cache-hit"] == "true"
    assert second.headers["x-litellm-cache-key"] == first.headers["x-litellm-cache-key"]
    assert second.json()["choices"] == first.json()["choices"]
    assert float(second.headers["x-litellm-response-cost"]) == 0
    assert float(first.headers["x-litellm-response-cost"]) > 0
    other = ask(fleet[1], "missed", temperature=0.5)  # a parameter that changes the answer
    assert other.headers["x-litellm-cache-hit"] == "false"
    assert arrivals(fake_openai, "missed") == 2
    metrics = httpx.get(f"{fleet[1].url}/metrics", timeout=10,
                        headers={"authorization": f"Bearer {MASTER}"}).text
    assert 'laneway_cache_lookups_total{model_group="missed",result="hit"} 1.0' in metrics


def test_twenty_identical_concurrent_requests_reach_the_upstream_once(fleet, fake_openai
                                                                      ) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return list(await asyncio.gather(*(
                client.post(f"{fleet[i % 2].url}/v1/chat/completions",
                            headers={"authorization": f"Bearer {MASTER}"},
                            json={"model": "flight",
                                  "messages": [{"role": "user", "content": "once"}]})
                for i in range(20))))

    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [200] * 20
    assert arrivals(fake_openai, "flight") == 1
    assert len({r.json()["choices"][0]["message"]["content"] for r in answers}) == 1
    assert sum(r.headers["x-litellm-cache-hit"] == "false" for r in answers) == 1


def test_an_entry_expires_after_its_ttl(fleet, fake_openai) -> None:
    assert ask(fleet[0], "ttl", cache={"ttl": 0.5}).headers["x-litellm-cache-hit"] == "false"
    assert ask(fleet[1], "ttl").headers["x-litellm-cache-hit"] == "true"
    time.sleep(0.6)
    assert ask(fleet[1], "ttl").headers["x-litellm-cache-hit"] == "false"
    assert arrivals(fake_openai, "ttl") == 2


def test_no_cache_and_no_store(fleet, fake_openai) -> None:
    stored = ask(fleet[0], "controls", "no-store", cache={"no-store": True})
    assert stored.status_code == 200, stored.text
    assert ask(fleet[1], "controls", "no-store").headers["x-litellm-cache-hit"] == "false"
    assert ask(fleet[0], "controls", "no-store").headers["x-litellm-cache-hit"] == "true"
    fresh = ask(fleet[1], "controls", "no-store", cache={"no-cache": True})
    assert fresh.headers["x-litellm-cache-hit"] == "false"
    assert arrivals(fake_openai, "controls") == 3
    sent = [r for r in fake_openai.requests() if r["body"].get("model") ==
            upstream_model("controls")]
    assert all("cache" not in r["body"] for r in sent)  # the controls are laneway's
    bad = ask(fleet[0], "controls", cache={"ttl": "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cache"


def test_a_hit_is_replayed_as_a_stream_and_a_streamed_miss_is_stored(fleet, fake_openai
                                                                     ) -> None:
    client = fleet[0].openai()
    plain = client.chat.completions.create(
        model="stream", messages=[{"role": "user", "content": "plain first"}])
    chunks = list(fleet[1].openai().chat.completions.create(
        model="stream", messages=[{"role": "user", "content": "plain first"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    streamed = list(client.chat.completions.create(
        model="stream", messages=[{"role": "user", "content": "stream first"}], stream=True))
    again = fleet[1].openai().chat.completions.with_raw_response.create(
        model="stream", messages=[{"role": "user", "content": "stream first"}])
    assert again.headers["x-litellm-cache-hit"] == "true"
    assert again.parse().choices[0].message.content == "".join(
        c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert again.parse().choices[0].finish_reason == "stop"
    assert arrivals(fake_openai, "stream") == 2


def test_two_keys_never_see_each_others_answers(fleet, fake_openai) -> None:
    a, b = generate(fleet[0]), generate(fleet[1])
    assert ask(fleet[0], "scope", key=a).headers["x-litellm-cache-hit"] == "false"
    assert ask(fleet[1], "scope", key=a).headers["x-litellm-cache-hit"] == "true"
    other = ask(fleet[1], "scope", key=b)
    assert other.status_code == 200 and other.headers["x-litellm-cache-hit"] == "false"
    assert arrivals(fake_openai, "scope") == 2


def test_a_hit_uses_none_of_the_keys_rpm_limit(fleet, fake_openai) -> None:
    key = generate(fleet[0], rpm_limit=1)
    assert ask(fleet[0], "rpm", key=key).status_code == 200
    for gw in (fleet[0], fleet[1], fleet[0]):
        hit = ask(gw, "rpm", key=key)
        assert hit.status_code == 200, hit.text
        assert hit.headers["x-litellm-cache-hit"] == "true"
    assert ask(fleet[1], "rpm", "something new", key=key).status_code == 429
    assert arrivals(fake_openai, "rpm") == 1


def refused_after_update(fleet: list[Gateway], key: str, change: dict[str, Any]
                         ) -> httpx.Response:
    assert ask(fleet[0], "budget", key=key).status_code == 200
    assert ask(fleet[1], "budget", key=key).headers["x-litellm-cache-hit"] == "true"
    httpx.post(f"{fleet[0].url}/key/update", json={"key": key, **change},
               headers={"authorization": f"Bearer {MASTER}"}, timeout=10).raise_for_status()
    deadline = time.monotonic() + 5
    while True:  # the change reaches the other instance by its notice
        refused = ask(fleet[1], "budget", key=key)
        if refused.status_code != 200 or time.monotonic() > deadline:
            return refused
        time.sleep(0.05)


def test_a_spent_budget_refuses_a_hit(fleet, fake_openai) -> None:
    before = arrivals(fake_openai, "budget")
    refused = refused_after_update(fleet, generate(fleet[0], max_budget=1.0),
                                   {"max_budget": 0.0})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "budget_exceeded"
    assert arrivals(fake_openai, "budget") == before + 1


def test_a_limit_of_zero_refuses_a_hit(fleet, fake_openai) -> None:
    before = arrivals(fake_openai, "budget")
    refused = refused_after_update(fleet, generate(fleet[0]), {"rpm_limit": 0})
    assert refused.status_code == 429, refused.text
    assert arrivals(fake_openai, "budget") == before + 1


def request_lines(gw: Gateway) -> dict[str, dict[str, Any]]:
    lines = [orjson.loads(x) for x in output(gw.proc).splitlines() if x.startswith("{")]
    return {x["request_id"]: x for x in lines
            if x.get("logger") == "laneway.request" and x["level"] == "INFO"}


def test_a_follower_that_leaves_is_let_go_and_the_log_line_tells(fleet, fake_openai) -> None:
    body = {"model": "gated", "messages": [{"role": "user", "content": "held"}]}
    auth = {"authorization": f"Bearer {MASTER}"}
    leader: list[httpx.Response] = []
    with fake_openai.gate("cache-gate"):
        thread = threading.Thread(target=lambda: leader.append(httpx.post(
            f"{fleet[0].url}/v1/chat/completions", json=body, timeout=30,
            headers={**auth, "x-request-id": "gated-leader"})))
        thread.start()
        deadline = time.monotonic() + 5
        while arrivals(fake_openai, "gated") == 0:  # the leader's call is at the upstream
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(httpx.ReadTimeout):  # a follower that gives up and leaves
            httpx.post(f"{fleet[1].url}/v1/chat/completions", json=body, timeout=0.5,
                       headers={**auth, "x-request-id": "gated-follower"})
        deadline = time.monotonic() + 5
        while "gated-follower" not in request_lines(fleet[1]):
            assert time.monotonic() < deadline, "the follower was never let go"
            time.sleep(0.05)
    thread.join(10)
    assert leader and leader[0].status_code == 200
    follower = request_lines(fleet[1])["gated-follower"]
    assert follower["status"] == 499 and follower["cache_joined"] is True
    assert follower["cache_key"] == leader[0].headers["x-litellm-cache-key"]
    deadline = time.monotonic() + 5
    while "gated-leader" not in request_lines(fleet[0]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    line = request_lines(fleet[0])["gated-leader"]
    assert line["cache_hit"] is False and line["cache_stored"] is True
    hit = ask(fleet[1], "gated", "held")
    assert hit.headers["x-litellm-cache-hit"] == "true"
    assert arrivals(fake_openai, "gated") == 1
