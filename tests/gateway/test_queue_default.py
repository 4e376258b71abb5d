"""A model group's line is finite unless the config says otherwise: with no `max_queue_size`
the 1001st waiter gets 429 `queue_full` with Retry-After; `-1` still means unlimited."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from router.config import Config
from router.options import DEFAULT_MAX_QUEUE_SIZE, RouterOptions
from tests.support.gateway import clean_env, start_gateway

BODY = {"model": "one-at-a-time", "messages": [{"role": "user", "content": "hi"}]}


def config(**router_settings: object) -> dict[str, object]:
    return {
        "model_list": [{"model_name": "one-at-a-time", "litellm_params": {
            "model": "gpt-4o-mini", "mock_response": "ok", "mock_delay": 30,
            "max_parallel_requests": 1}}],
        "router_settings": {"num_retries": 0, **router_settings},
    }


async def flood(url: str, count: int, expect: int) -> tuple[Counter[str], dict[str, str]]:
    """`count` requests at once; returns how they ended once `expect` of them were refused
    (the rest are still waiting in line, and are abandoned)."""
    outcomes: Counter[str] = Counter()
    refused_headers: dict[str, str] = {}
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def one() -> None:
            r = await client.post("/v1/chat/completions", json=BODY)
            code = r.json()["error"]["code"] if r.status_code >= 400 else str(r.status_code)
            outcomes[code] += 1
            if r.status_code == 429:
                refused_headers.update(r.headers)
            if sum(outcomes.values()) >= expect:
                done.set()

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        try:
            await asyncio.wait_for(done.wait(), 40)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes, refused_headers


def test_the_default_line_holds_a_thousand_waiters() -> None:
    assert DEFAULT_MAX_QUEUE_SIZE == 1000
    gw = start_gateway(config(), clean_env())
    try:
        # One request in flight, 1000 in line: the two left over are turned away at once.
        outcomes, headers = asyncio.run(flood(gw.url, DEFAULT_MAX_QUEUE_SIZE + 3, expect=2))
    finally:
        gw.stop()
    assert outcomes == Counter({"queue_full": 2}), outcomes
    assert headers["retry-after"].isdigit() and int(headers["retry-after"]) >= 1


@pytest.mark.parametrize("setting,expected", [
    (None, (DEFAULT_MAX_QUEUE_SIZE, -1)),
    (-1, (-1, -1)),
    ({"default": -1}, (-1, -1)),
    ({"g": -1}, (-1, -1)),
    ({"other": 5}, (DEFAULT_MAX_QUEUE_SIZE, -1)),
    (0, (0, -1)),
])
def test_minus_one_is_the_explicit_unlimited(setting: object, expected: tuple[int, int]) -> None:
    doc = {"model_list": [], "router_settings": {} if setting is None else {
        "max_queue_size": setting}}
    cfg = Config.model_validate(doc)
    options = RouterOptions.from_settings(cfg.router_settings.model_dump(exclude_none=True))
    assert options.queue_limits("g", 0) == expected
