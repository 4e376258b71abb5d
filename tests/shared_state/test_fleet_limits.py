"""Three gateway processes sharing one Redis behave as one gateway: limits are exact across
instances, cooldowns are shared, and each routing strategy picks what it should. The limit and
line tests also run on a three-primary Redis Cluster, each gateway given a different node."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import httpx
import pytest

from tests.support.cluster import chat_body, fleet, spread, unique, until
from tests.support.fake_openai import FakeUpstream
from tests.support.redis_server import RedisCluster, RedisServer

on_redis_and_cluster = pytest.mark.parametrize("store", ["redis_server", "redis_cluster"])


def config(redis: RedisServer, models: list[dict[str, Any]], **router: Any) -> dict[str, Any]:
    return {"model_list": models,
            "router_settings": {"redis_url": redis.url, "num_retries": 0, **router}}


def fleet_configs(redis: RedisServer | RedisCluster, models: list[dict[str, Any]],
                  **router: Any) -> list[dict[str, Any]]:
    """Three gateways' configs; on a cluster each names a different node, as instances in
    different zones might."""
    urls = ([f"redis://127.0.0.1:{node.port}" for node in redis.nodes]
            if isinstance(redis, RedisCluster) else [redis.url])
    return [{"model_list": models,
             "router_settings": {"redis_url": urls[i % len(urls)], "num_retries": 0, **router}}
            for i in range(3)]


def deployment(group: str, upstream: FakeUpstream, model: str, **params: Any) -> dict:
    return {"model_name": group, "litellm_params": {
        "model": f"openai/{model}", "api_base": upstream.url, "api_key": "k", **params}}


@on_redis_and_cluster
def test_rpm_is_exact_across_instances(store, request, fake_openai) -> None:
    redis = request.getfixturevalue(store)
    group = unique("rpm10")
    cfgs = fleet_configs(redis, [deployment(group, fake_openai, group, rpm=10)],
                         max_queue_size=0)
    with fleet(cfgs) as gws:
        responses = asyncio.run(spread(gws, [chat_body(group)] * 40))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10 and statuses.count(429) == 30
    assert fake_openai.counts()[group] == 10
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"


@on_redis_and_cluster
def test_parallel_limit_never_exceeded_and_overflow_waits(store, request, fake_openai) -> None:
    redis = request.getfixturevalue(store)
    group = unique("par2")
    model = f"{group}+delay=0.15"
    cfgs = fleet_configs(redis, [deployment(group, fake_openai, model, max_parallel_requests=2)])
    with fleet(cfgs) as gws:
        responses = asyncio.run(spread(gws, [chat_body(group)] * 12))
    assert [r.status_code for r in responses] == [200] * 12
    assert fake_openai.peaks()[model] == 2
    waited = [r for r in responses if r.headers.get("x-litellm-request-prioritization-used")]
    assert len(waited) >= 8
    assert all(float(r.headers["x-laneway-queue-ms"]) > 0 for r in waited)


def test_tpm_reserves_then_reconciles_with_real_usage(redis_server, fake_openai) -> None:
    group = unique("tpm")
    cfg = config(redis_server, [deployment(group, fake_openai, group, tpm=100)],
                 max_queue_size=0)
    with fleet(cfg) as gws, httpx.Client(timeout=30) as c:
        used = 0
        # Each reserves ~prompt + 40 tokens; only the real usage (~10) stays in the window, so
        # far more than 100 / 50 = 2 requests fit.
        for i in range(6):
            r = c.post(f"{gws[i % 3].url}/v1/chat/completions",
                       json=chat_body(group, "one two three", max_tokens=40))
            assert r.status_code == 200, r.text
            used += r.json()["usage"]["total_tokens"]
        assert used <= 70
        # A request whose reservation no longer fits the 100-token window is refused.
        r = c.post(f"{gws[0].url}/v1/chat/completions",
                   json=chat_body(group, "one two three", max_tokens=100 - used + 5))
        assert r.status_code == 429


def test_cooldown_is_shared_by_all_instances(redis_server, fake_openai) -> None:
    group = unique("cool")
    bad, good = f"{group}-bad+status=500", f"{group}-good"
    cfg = config(redis_server,
                 [deployment(group, fake_openai, bad), deployment(group, fake_openai, good)],
                 allowed_fails=2, cooldown_time=60)
    with fleet(cfg) as gws, httpx.Client(timeout=30) as c:
        for _ in range(40):
            c.post(f"{gws[0].url}/v1/chat/completions", json=chat_body(group))
            if fake_openai.counts().get(bad, 0) >= 2:
                break
        assert fake_openai.counts()[bad] == 2
        for i in range(12):
            r = c.post(f"{gws[1 + i % 2].url}/v1/chat/completions", json=chat_body(group))
            assert r.status_code == 200
        assert fake_openai.counts()[bad] == 2  # nobody called the cooled-down deployment


def _served_by(responses: list[httpx.Response]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in responses:
        assert r.status_code == 200, r.text
        model = r.json()["model"]
        out[model] = out.get(model, 0) + 1
    return out


def test_least_busy_avoids_the_slow_deployment(redis_server, fake_openai) -> None:
    group = unique("busy")
    # The slow deployment holds every call it gets until the scenario ends, so its in-flight
    # count only grows; the fast one answers at once.
    slow, fast = f"{group}-slow+gate={group}", f"{group}-fast"
    cfg = config(redis_server, [deployment(group, fake_openai, slow),
                                deployment(group, fake_openai, fast)],
                 routing_strategy="least-busy")

    async def reached(n: int) -> bool:
        seen = await asyncio.to_thread(fake_openai.counts)
        return seen.get(slow, 0) + seen.get(fast, 0) >= n

    async def one_at_a_time(gws) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as c:
            calls, held = [], 0
            with fake_openai.gate(group):
                for i in range(24):
                    call = asyncio.create_task(c.post(f"{gws[i % 3].url}/v1/chat/completions",
                                                      json=chat_body(group)))
                    await until(functools.partial(reached, i + 1), f"request {i} at an upstream")
                    calls.append(call)
                    if (await asyncio.to_thread(fake_openai.counts)).get(slow, 0) > held:
                        held += 1  # went to the slow one, where it stays in flight
                    else:
                        await call
            return list(await asyncio.gather(*calls))

    with fleet(cfg) as gws:
        counts = _served_by(asyncio.run(one_at_a_time(gws)))
    # Each instance saw the slow deployment's held call in the shared in-flight count and sent
    # every later request to the idle fast one; only the very first choice is a tie.
    assert counts.get(f"{group}-slow", 0) <= 1
    assert counts.get(f"{group}-fast", 0) >= 23


def test_latency_based_prefers_the_faster_upstream(redis_server, fake_openai) -> None:
    group = unique("lat")
    slow, fast = f"{group}-slow+delay=0.25", f"{group}-fast"
    cfg = config(redis_server, [deployment(group, fake_openai, slow),
                                deployment(group, fake_openai, fast)],
                 routing_strategy="latency-based-routing")
    with fleet(cfg) as gws, httpx.Client(timeout=30) as c:
        for i in range(4):  # let both deployments be measured
            c.post(f"{gws[i % 3].url}/v1/chat/completions", json=chat_body(group))
        fake_openai.clear()
        for i in range(15):
            r = c.post(f"{gws[i % 3].url}/v1/chat/completions", json=chat_body(group))
            assert r.status_code == 200
    counts = fake_openai.counts()
    assert counts.get(fast, 0) >= 14 and counts.get(slow, 0) <= 1


def test_usage_based_spreads_tokens(redis_server, fake_openai) -> None:
    group = unique("usage")
    a, b = f"{group}-a", f"{group}-b"
    cfg = config(redis_server, [deployment(group, fake_openai, a, tpm=100000),
                                deployment(group, fake_openai, b, tpm=100000)],
                 routing_strategy="usage-based-routing-v2")
    with fleet(cfg) as gws, httpx.Client(timeout=30) as c:
        for i in range(12):
            r = c.post(f"{gws[i % 3].url}/v1/chat/completions", json=chat_body(group, "x y z"))
            assert r.status_code == 200
    counts = fake_openai.counts()
    assert abs(counts[a] - counts[b]) <= 1


@pytest.mark.parametrize("fail_open", [False, True])
def test_redis_outage_and_recovery(fail_open: bool, fake_openai) -> None:
    from tests.support.redis_server import start_redis

    redis = start_redis()
    group = unique("outage")
    cfg = config(redis, [deployment(group, fake_openai, group)], redis_fail_open=fail_open)
    try:
        with fleet(cfg, n=1) as (gw,), httpx.Client(timeout=10) as c:
            url = f"{gw.url}/v1/chat/completions"
            assert c.post(url, json=chat_body(group)).status_code == 200
            redis.kill()
            r = c.post(url, json=chat_body(group))
            if fail_open:
                assert r.status_code == 200
            else:
                assert r.status_code == 503
                assert r.json()["error"]["type"] == "service_unavailable"
                assert r.elapsed.total_seconds() < 0.5
                assert c.get(f"{gw.url}/health/readiness").status_code == 503
            redis.start()  # same port: the gateway reconnects by itself
            ok = False
            for _ in range(40):
                if c.post(url, json=chat_body(group)).status_code == 200 and (
                    c.get(f"{gw.url}/health/readiness").status_code == 200
                ):
                    ok = True
                    break
                import time

                time.sleep(0.1)
            assert ok
    finally:
        redis.stop()
