"""A virtual key's limits, budget and priority floor hold across a fleet: three gateway
processes on one real Redis, called with the official OpenAI SDK and plain HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.procs import output
from tests.support.redis_server import RedisServer, start_redis

MASTER = "sk-master-enforce-0123456789"
PRICED = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def config_for(server: RedisServer) -> dict[str, Any]:
    return {
        "model_list": [
            {"model_name": "m", "litellm_params": {
                "model": "gpt-4o", "mock_response": "one two three", **PRICED}},
            {"model_name": "slow", "litellm_params": {
                "model": "gpt-4o", "mock_response": "ok", "mock_delay": 0.3}},
            {"model_name": "other", "litellm_params": {"model": "gpt-4o", "mock_response": "x"}},
        ],
        "router_settings": {"redis_url": server.url, "num_retries": 0},
        "general_settings": {"master_key": MASTER},
    }


@pytest.fixture(scope="module")
def fleet() -> Iterator[list[Gateway]]:
    server = start_redis()
    gateways = [start_gateway(config_for(server), clean_env(), key=MASTER) for _ in range(3)]
    yield gateways
    for gw in gateways:
        gw.stop()
    server.stop()


def generate(gw: Gateway, **fields: Any) -> str:
    with gw.client() as client:
        answer = client.post("/key/generate", json=fields)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


def body(model: str = "m", **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


async def burst(gws: list[Gateway], key: str, n: int, **kw: Any) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(
            client.post(f"{gws[i % len(gws)].url}/v1/chat/completions",
                        headers={"authorization": f"Bearer {key}"}, json=body(**kw))
            for i in range(n))))


def test_rpm_limit_admits_exactly_its_number_across_three_instances(fleet) -> None:
    key = generate(fleet[0], rpm_limit=5)
    answers = asyncio.run(burst(fleet, key, 20))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 5 + [429] * 15
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "5"


def test_two_keys_of_a_team_share_its_limit(fleet) -> None:
    with fleet[0].client() as client:
        assert client.post("/team/new", json={"team_id": "shared", "rpm_limit": 4}
                           ).status_code == 200
    a, b = generate(fleet[0], team_id="shared"), generate(fleet[1], team_id="shared")
    answers = asyncio.run(burst(fleet, a, 3)) + asyncio.run(burst(fleet, b, 3))
    assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 2


def test_budget_is_not_exceeded_under_concurrent_calls(fleet) -> None:
    key = generate(fleet[0], max_budget=0.2, key_alias="budgeted")
    answers = asyncio.run(burst(fleet, key, 30, max_tokens=10))
    served = [r for r in answers if r.status_code == 200]
    assert served and all(r.json()["error"]["type"] == "budget_exceeded"
                          for r in answers if r.status_code != 200)
    spent = sum(float(r.headers["x-litellm-response-cost"]) for r in served)
    assert 0 < spent <= 0.2
    # Each answer's spend is booked by its release, which goes out with the answer: on another
    # instance it shows a round trip later.
    deadline = time.monotonic() + 5
    with fleet[2].client() as client:
        while True:
            info = client.get("/key/info", params={"key": key}).json()
            if abs(info["info"]["spend"] - spent) < 1e-6 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    assert abs(info["info"]["spend"] - spent) < 1e-6
    metrics = ""
    for gw in fleet:  # each instance counts what it served
        with gw.client() as client:
            metrics += client.get("/metrics").text
    lines = [x for x in metrics.splitlines()
             if x.startswith("laneway_spend_usd_total{") and 'key_alias="budgeted"' in x]
    assert lines and abs(sum(float(x.rsplit(" ", 1)[1]) for x in lines) - spent) < 1e-6


def test_budget_resets_after_its_duration(fleet) -> None:
    key = generate(fleet[0], max_budget=0.02, budget_duration="2s")
    first = asyncio.run(burst(fleet[:1], key, 1, max_tokens=5))[0]
    assert first.status_code == 200
    deadline = time.monotonic() + 10
    while True:  # spent within this period: refused until the period ends
        again = asyncio.run(burst(fleet[1:2], key, 1, max_tokens=5))[0]
        if again.status_code == 200:
            break
        assert again.json()["error"]["type"] == "budget_exceeded"
        assert time.monotonic() < deadline, "the budget never reset"
        time.sleep(0.2)


def test_priority_floor_holds_against_priority_zero(fleet) -> None:
    key = generate(fleet[0], priority_floor=1000, default_priority=2000)
    client = openai.OpenAI(base_url=f"{fleet[1].url}/v1", api_key=key)
    for rid, extra in (("floor-asked-0", {"priority": 0}), ("floor-default", {})):
        reply = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}], extra_body=extra,
            extra_headers={"x-request-id": rid})
        assert reply.http_response.status_code == 200
    deadline = time.monotonic() + 5
    while True:  # the log line says which priority the request waited with
        lines = {x["request_id"]: x for x in request_lines(output(fleet[1].proc))}
        if {"floor-asked-0", "floor-default"} <= set(lines):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lines["floor-asked-0"]["priority"] == 1000
    assert lines["floor-default"]["priority"] == 2000
    assert key not in str(lines)


def request_lines(text: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(x) for x in text.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "laneway.request" and x["level"] == "INFO"]


def test_model_access_and_listing(fleet) -> None:
    key = generate(fleet[0], models=["m"])
    client = openai.OpenAI(base_url=f"{fleet[2].url}/v1", api_key=key)
    assert [m.id for m in client.models.list()] == ["m"]
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="other",
                                       messages=[{"role": "user", "content": "hi"}])
    assert "other" in str(info.value)
    # A model nobody serves: the 404 lists what this key may call, not every model.
    for ask in (lambda: client.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "hi"}]),
                lambda: client.responses.create(model="nope", input="hi")):
        with pytest.raises(openai.NotFoundError) as missing:
            ask()
        assert str(missing.value).endswith("Available models: m"), str(missing.value)


def test_blocked_and_expired_keys_are_refused(fleet) -> None:
    key = generate(fleet[0], duration="1s")
    client = openai.OpenAI(base_url=f"{fleet[1].url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
