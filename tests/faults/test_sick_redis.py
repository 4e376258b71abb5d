"""A sick Redis between the gateways and their shared state: slow, stalled, cutting connections
mid-pipeline, black-holing packets, flushed empty under load. Requests end fast with a 503 (or
as fail-open promises), never past their own timeout, and the fleet heals by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.faults.helpers import (
    group_config,
    in_flight,
    is_openai_error,
    leftovers,
    until_true,
    waiting,
)
from tests.support.cluster import chat_body, fleet, unique
from tests.support.gateway import Gateway
from tests.support.procs import free_port
from tests.support.redis_fault_proxy import RedisFaultProxy, start_fault_proxy
from tests.support.redis_server import RedisServer, start_redis

STATE_TIMEOUT = 2.0
"""The Redis call timeout (router/state/redis_store.py)."""
SLACK = 1.0
"""What a loaded 2-core CI machine may add on top of a bound."""


@pytest.fixture(scope="module")
def proxy(redis_server) -> Iterator[RedisFaultProxy]:
    with start_fault_proxy(redis_server.port) as p:
        yield p


@pytest.fixture
def healed(proxy: RedisFaultProxy) -> Iterator[RedisFaultProxy]:
    proxy.heal()
    yield proxy
    proxy.heal()


def post(gw: Gateway, group: str, tag: str = "hi", wait: float = 30, **body: Any
         ) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, tag, **body),
                   timeout=wait)
    return r, time.monotonic() - started


def assert_fast_503(r: httpx.Response, took: float, bound: float = STATE_TIMEOUT) -> None:
    assert r.status_code == 503, r.text
    assert is_openai_error(r) and r.json()["error"]["type"] == "service_unavailable"
    assert int(r.headers["retry-after"]) >= 1
    assert took < bound + SLACK, f"503 after {took:.2f}s"


@pytest.mark.parametrize("fault", ["stall", "blackhole", "slow"])
def test_unresponsive_redis_gives_fast_503s_and_service_comes_back(
        redis_server, fake_openai, healed, fault) -> None:
    group = unique(fault)
    cfg = group_config(healed.url, fake_openai, group, group, parallel=4)
    with fleet(cfg, n=1) as (gw,):
        assert post(gw, group)[0].status_code == 200
        if fault == "slow":
            healed.delay(STATE_TIMEOUT + 1)
        else:
            getattr(healed, fault)()
        r, took = post(gw, group)
        assert_fast_503(r, took)
        ready = httpx.get(f"{gw.url}/health/readiness", timeout=10)
        assert ready.status_code == 503
        # A request with less time than a state call gets its answer within its own timeout.
        r, took = post(gw, group, wait=10, timeout=0.5)
        assert r.status_code in (408, 503) and is_openai_error(r), r.text
        assert took < 0.5 + SLACK
        healed.heal()
        # No restart: at most the call that finds the dead connection fails, then all pass.
        r, took = post(gw, group, "after")
        assert r.status_code == 200 or (r.status_code == 503 and took < STATE_TIMEOUT + SLACK)
        for i in range(3):
            r, _ = post(gw, group, f"after-{i}")
            assert r.status_code == 200, r.text
        # Admissions Redis ran while nobody heard the answer hold slots until their lease ends.
        asyncio.run(until_true(lambda: leftovers(redis_server.url, group) == [],
                               "unheard admissions to run out", timeout=3))


def test_slow_redis_only_slows_requests(redis_server, fake_openai, healed) -> None:
    group = unique("latency")
    cfg = group_config(healed.url, fake_openai, group, group, parallel=2)
    with fleet(cfg, n=1) as (gw,):
        healed.delay(0.3)
        r, took = post(gw, group)
        assert r.status_code == 200
        # The admission waited for Redis; the release, sent as the answer went out, did not
        # hold the answer back.
        assert 0.3 <= took < 0.6
    assert leftovers(redis_server.url, group) == []  # shutting down waited for it


def test_connections_cut_mid_pipeline_leak_nothing(redis_server, fake_openai, healed) -> None:
    """Redis runs the scripts (admissions, line entries, releases) but the answers never come
    back: whatever was reserved without anyone knowing runs out with its lease."""
    group = unique("cut")
    model = f"{group}+gate={group}"
    cfg = group_config(healed.url, fake_openai, group, model, parallel=2,
                       queue_lease_seconds=0.6)

    async def scenario(gws: list[Gateway]) -> list[httpx.Response | BaseException]:
        async with httpx.AsyncClient(timeout=30) as c:
            def send(i: int) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(c.post(f"{gws[i % 2].url}/v1/chat/completions",
                                                  json=chat_body(group, f"r{i}")))

            with fake_openai.gate(group):
                tasks = [send(i) for i in range(8)]  # two run, six wait
                await until_true(lambda: len(in_flight(fake_openai, model)) == 2,
                                 "two calls in flight")
                await until_true(lambda: _waits(gws[0], group, 6), "six waiters")
                healed.drop_replies()
            # Releases, renewals and re-admissions now run in Redis without an answer.
            results = await asyncio.gather(*tasks, return_exceptions=True)
            healed.heal()
            return list(results)

    with fleet(cfg, n=2) as gws:
        results = asyncio.run(scenario(gws))
        assert healed.dropped > 0
        odd = [r for r in results if not isinstance(r, httpx.Response)
               or r.status_code not in (200, 503) or not (r.status_code == 200
                                                          or is_openai_error(r))]
        assert not odd, odd
        asyncio.run(until_true(lambda: leftovers(redis_server.url, group) == [],
                               "leaked entries to run out", timeout=5))
        for gw in gws:
            assert post(gw, group, "after")[0].status_code == 200
    assert leftovers(redis_server.url, group) == []


def test_waiters_are_woken_after_a_black_hole(redis_server, fake_openai, healed) -> None:
    """The wake-up subscription's connection died silently in the black hole; once Redis is
    reachable again a waiter is woken by a release at once, not by its safety-net poll."""
    group = unique("rewake")
    model = f"{group}+gate={group}"
    cfg = group_config(healed.url, fake_openai, group, model, polling_interval=5)

    async def scenario(gw: Gateway) -> float:
        async with httpx.AsyncClient(timeout=30) as c:
            def send(tag: str) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                  json=chat_body(group, tag)))

            with fake_openai.gate(group):
                blocker = send("blocker")
                await until_true(lambda: len(in_flight(fake_openai, model)) == 1, "blocker")
                follower = send("follower")
                await until_true(lambda: _waits(gw, group, 1), "the follower to wait")
            opened = time.time()
            await blocker
            await follower
            start = next(r["t"] for r in fake_openai.requests()
                         if (r["body"].get("messages") or [{}])[0].get("content") == "follower")
            return start - opened

    with fleet(cfg, n=1) as (gw,):
        assert post(gw, group, "warm-up")[0].status_code == 200
        healed.blackhole()
        assert post(gw, group, "lost")[0].status_code == 503
        healed.heal()
        # The subscription notices a dead link within a PING interval plus a call timeout,
        # and a reconnect started into the black hole fails within another.
        time.sleep(1 + 2 * STATE_TIMEOUT)
        assert post(gw, group, "back")[0].status_code == 200
        delay = asyncio.run(scenario(gw))
    assert delay < 0.5, f"the follower started {delay:.2f}s after the release"


def test_fail_open_serves_through_a_black_hole(redis_server, fake_openai, healed) -> None:
    group = unique("open")
    cfg = group_config(healed.url, fake_openai, group, group, parallel=2,
                       redis_fail_open=True)
    with fleet(cfg, n=1) as (gw,):
        assert post(gw, group)[0].status_code == 200
        healed.blackhole()
        r, took = post(gw, group, "first")  # the call that finds Redis gone waits for it
        assert r.status_code == 200 and took < STATE_TIMEOUT * 2 + SLACK, r.text
        r, took = post(gw, group, "later")  # per-instance limits now, without waiting
        assert r.status_code == 200 and took < 0.5 + SLACK
        healed.heal()
        time.sleep(1.1)  # the fail-open state tries Redis again each second
        assert post(gw, group, "shared")[0].status_code == 200
    assert leftovers(redis_server.url, group) == []


def test_redis_flushed_under_load_rebuilds_lines_and_limits(redis_server, fake_openai) -> None:
    group = unique("flush")
    model = f"{group}+delay=0.05"
    cfg = group_config(redis_server.url, fake_openai, group, model, parallel=3, timeout=30)
    r = redis.Redis.from_url(redis_server.url)

    async def scenario(gws: list[Gateway]) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            tasks = [asyncio.create_task(c.post(
                f"{gws[i % 3].url}/v1/chat/completions",
                json=chat_body(group, f"r{i}", priority=i % 3))) for i in range(150)]
            await until_true(lambda: len(in_flight(fake_openai, model)) >= 1, "traffic")
            await asyncio.sleep(0.3)
            await asyncio.to_thread(r.flushall)  # the cache node came back empty
            return list(await asyncio.gather(*tasks))

    try:
        with fleet(cfg) as gws:
            results = asyncio.run(scenario(gws))
            statuses = [x.status_code for x in results]
            assert set(statuses) <= {200, 503}, [x.text for x in results
                                                 if x.status_code not in (200, 503)][:3]
            assert statuses.count(200) >= 140
            # The line and the limits work as before: every instance serves, within the limit.
            fake_openai.clear()
            after = asyncio.run(_burst(gws, group, 12))
            assert [x.status_code for x in after] == [200] * 12
            assert fake_openai.peaks()[model] <= 3
            for gw in gws:
                assert gw.proc.poll() is None
    finally:
        r.close()
    assert leftovers(redis_server.url, group) == []


async def _burst(gws: list[Gateway], group: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as c:
        return list(await asyncio.gather(*(
            c.post(f"{gws[i % len(gws)].url}/v1/chat/completions",
                   json=chat_body(group, f"b{i}")) for i in range(n))))


async def _waits(gw: Gateway, group: str, n: int) -> bool:
    return await waiting(gw, group) >= n


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own: it is made to run out of memory."""
    server = start_redis()
    yield server
    server.stop()


def test_a_redis_out_of_memory_refuses_new_work_but_frees_what_ends(own_redis, fake_openai
                                                                     ) -> None:
    """Under `maxmemory` with `noeviction`, Redis refuses writes. Admissions (which add to its
    memory) get a fast 503; a request that ends still gives its slot back (which frees
    memory), so the gateway is whole again the moment Redis has room."""
    group = unique("oom")
    model = f"{group}+gate={group}"
    # Leases far longer than the wait below: a slot that was not released shows.
    cfg = group_config(own_redis.url, fake_openai, group, model, parallel=1,
                       queue_lease_seconds=30)
    r = redis.Redis.from_url(own_redis.url)

    async def scenario(gw: Gateway) -> tuple[httpx.Response, httpx.Response, float]:
        async with httpx.AsyncClient(timeout=30) as c:
            with fake_openai.gate(group):
                running = asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                     json=chat_body(group, "running")))
                await until_true(lambda: len(in_flight(fake_openai, model)) == 1, "a call")
                r.config_set("maxmemory-policy", "noeviction")
                r.config_set("maxmemory", 1)  # below what the server already holds
                started = time.monotonic()
                refused = await c.post(f"{gw.url}/v1/chat/completions",
                                       json=chat_body(group, "refused"))
                took = time.monotonic() - started
            answered = await running
            # Still out of memory: the slot the answered request held is given back anyway.
            await until_true(lambda: leftovers(own_redis.url, group) == [],
                             "the slot to be released", timeout=3)
            # An operator still sees the line (the status scripts only prune, or only read).
            status = await c.get(f"{gw.url}/queue/status")
            assert status.status_code == 200, status.text
            assert status.json()["groups"] == [], status.text  # nobody waiting
            return answered, refused, took

    try:
        with fleet(cfg, n=1) as (gw,):
            assert post(gw, group, "warm")[0].status_code == 200
            answered, refused, took = asyncio.run(scenario(gw))
            assert answered.status_code == 200, answered.text
            assert_fast_503(refused, took)
            r.config_set("maxmemory", 0)
            assert post(gw, group, "after", timeout=5)[0].status_code == 200
    finally:
        r.config_set("maxmemory", 0)
        r.close()


def test_a_redis_turned_replica_gives_fast_503s(own_redis, fake_openai) -> None:
    """The node a gateway writes to became a read-only replica (a failover, seen from the old
    primary): an outage to wait out, not a gateway error."""
    group = unique("ro")
    cfg = group_config(own_redis.url, fake_openai, group, group)
    r = redis.Redis.from_url(own_redis.url)
    try:
        with fleet(cfg, n=1) as (gw,):
            assert post(gw, group, "warm")[0].status_code == 200
            r.replicaof("127.0.0.1", free_port())  # a primary that is not there
            assert_fast_503(*post(gw, group, "refused"))
            r.replicaof("NO", "ONE")
            assert post(gw, group, "after")[0].status_code == 200
    finally:
        r.replicaof("NO", "ONE")
        r.close()
