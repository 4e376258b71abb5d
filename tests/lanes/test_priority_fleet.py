"""Priority lanes across three gateway processes sharing one Redis."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest
import redis

from router.state.keys import GroupKeys
from tests.support.cluster import chat_body, fleet, unique, until
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway
from tests.support.redis_server import RedisServer


def lane_config(redis_server: RedisServer, upstream: FakeUpstream, group: str, model: str,
                deployment: dict[str, Any] | None = None, **router: Any) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": group, "litellm_params": {
            "model": f"openai/{model}", "api_base": upstream.url, "api_key": "k",
            "max_parallel_requests": 1, **(deployment or {})}}],
        "router_settings": {"redis_url": redis_server.url, "num_retries": 0, **router},
    }


def arrivals(upstream: FakeUpstream, model: str) -> list[str]:
    """The message contents of the requests `model` received, in arrival order (warm-ups
    left out)."""
    tags = [r["body"]["messages"][0]["content"] for r in upstream.requests()
            if r["body"].get("model") == model]
    return [t for t in tags if t != "warm-up"]


def warm_up(gws: list[Gateway], group: str) -> None:
    """One request through each gateway, so first-request set-up (connections, script loads)
    does not reorder the scenario's requests."""
    for gw in gws:
        httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, "warm-up"),
                   timeout=30).raise_for_status()


async def waiting(gw: Gateway, group: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient() as c:
        status = (await c.get(f"{gw.url}/queue/status")).json()
    return next((g for g in status["groups"] if g["model_group"] == group), None)


async def in_line(gw: Gateway, upstream: FakeUpstream, group: str, model: str, prio: int,
                  prefix: str, n: int) -> None:
    """Returns once `n` requests tagged `prefix` (at priority `prio`) are known to have
    entered the line. Several processes race to Redis, so the order a client sends in is not
    the line's order; scenarios that check FIFO send the next request only after this."""
    async def entered() -> bool:
        seen = await asyncio.to_thread(arrivals, upstream, model)
        served = sum(t.startswith(prefix) for t in seen)
        depth = await waiting(gw, group) or {"priorities": []}
        queued = sum(p["waiting"] for p in depth["priorities"] if p["priority"] == prio)
        # Read in this order, a request moving from the line to the upstream between the two
        # reads is missed rather than counted twice: the wait errs on the long side.
        return served + queued >= n

    await until(entered, f"{prefix} request {n} to enter the line")


def line_is_empty(redis_server: RedisServer, group: str) -> bool:
    keys = GroupKeys.of(group)
    r = redis.Redis.from_url(redis_server.url)
    try:
        # wmeta keeps the fair-share clock ("=V", "f:<tenant>") besides waiters' arrivals.
        waiters = [f for f in r.hkeys(keys.wmeta) if not f.startswith((b"=", b"f:"))]
        return r.zcard(keys.line) == 0 and r.zcard(keys.wlease) == 0 and not waiters
    finally:
        r.close()


def test_priority_zero_overtakes_waiting_requests_without_inversions(redis_server,
                                                                     fake_openai) -> None:
    group = unique("lanes")
    model = f"{group}+delay=0.02+gate={group}"
    cfg = lane_config(redis_server, fake_openai, group, model)

    async def scenario(gws: list[Gateway]) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as c:
            async def send(i: int, prio: int, tag: str) -> httpx.Response:
                return await c.post(f"{gws[i % 3].url}/v1/chat/completions",
                                    json=chat_body(group, tag, priority=prio))

            tasks = []
            with fake_openai.gate(group):  # p100-00 holds the only slot until the line is full
                for i in range(30):
                    tasks.append(asyncio.create_task(send(i, 100, f"p100-{i:02d}")))
                    await in_line(gws[0], fake_openai, group, model, 100, "p100-", i + 1)
                for j in range(5):
                    tasks.append(asyncio.create_task(send(j, 0, f"p0-{j}")))
                    await in_line(gws[0], fake_openai, group, model, 0, "p0-", j + 1)
                depth = await waiting(gws[1], group)
                assert depth and depth["waiting"] == 34
                assert [(p["priority"], p["waiting"]) for p in depth["priorities"]] == [
                    (0, 5), (100, 29)]
                assert depth["oldest_wait_ms"] > 0
            return list(await asyncio.gather(*tasks))

    with fleet(cfg) as gws:
        warm_up(gws, group)
        responses = asyncio.run(scenario(gws))
    assert [r.status_code for r in responses] == [200] * 35
    assert all(r.headers["x-litellm-request-prioritization-used"] == "true"
               for r in responses[1:])
    # The five priority-0 requests overtook the 29 waiting priority-100 ones, and each
    # priority was served first come, first served, across three instances.
    assert arrivals(fake_openai, model) == (
        ["p100-00"] + [f"p0-{j}" for j in range(5)] + [f"p100-{i:02d}" for i in range(1, 30)])
    assert line_is_empty(redis_server, group)


def test_sdk_extra_body_priority_and_default_priority(redis_server, fake_openai) -> None:
    group = unique("sdk")
    model = f"{group}+gate={group}"
    cfg = lane_config(redis_server, fake_openai, group, model, default_priority=50)

    async def scenario(gws: list[Gateway]) -> None:
        client = gws[0].async_openai()
        other = gws[1].async_openai()

        async def ask(c: Any, tag: str, **kw: Any) -> Any:
            return await c.chat.completions.with_raw_response.create(
                model=group, messages=[{"role": "user", "content": tag}], **kw)

        with fake_openai.gate(group):  # the blocker holds the only slot while the line forms
            tasks = [asyncio.create_task(ask(client, "blocker"))]
            await in_line(gws[0], fake_openai, group, model, 50, "blocker", 1)
            for i in range(3):
                tasks.append(asyncio.create_task(ask(client, f"default-{i}")))
                await in_line(gws[0], fake_openai, group, model, 50, "default-", i + 1)
            tasks.append(asyncio.create_task(ask(other, "zero", extra_body={"priority": 0})))
            await in_line(gws[0], fake_openai, group, model, 0, "zero", 1)
            tasks.append(asyncio.create_task(ask(other, "low", extra_body={"priority": 90})))
            await in_line(gws[0], fake_openai, group, model, 90, "low", 1)
        for r in await asyncio.gather(*tasks):
            assert r.http_response.status_code == 200

    with fleet(cfg, n=2) as gws:
        warm_up(gws, group)
        asyncio.run(scenario(gws))
    assert arrivals(fake_openai, model) == ["blocker", "zero", "default-0", "default-1",
                                            "default-2", "low"]
    assert all("priority" not in r["body"] for r in fake_openai.requests()
               if r["body"].get("model") == model)


def test_killed_instance_does_not_block_the_line(redis_server, fake_openai) -> None:
    group = unique("crash")
    model = f"{group}+delay=0.2"
    cfg = lane_config(redis_server, fake_openai, group, model, queue_lease_seconds=1)

    async def scenario(gws: list[Gateway]) -> float:
        victim, survivor = gws[0], gws[1]
        async with httpx.AsyncClient(timeout=30) as c:
            def send(gw: Gateway, tag: str, prio: int) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                  json=chat_body(group, tag, priority=prio)))

            doomed = [send(victim, f"doomed-{i}", 0) for i in range(4)]
            await asyncio.sleep(0.1)
            survivors = [send(survivor, f"ok-{i}", 5) for i in range(4)]
            await asyncio.sleep(0.15)
            victim.kill()
            killed_at = time.monotonic()
            results = await asyncio.gather(*survivors)
            assert [r.status_code for r in results] == [200] * 4
            await asyncio.gather(*doomed, return_exceptions=True)
            return time.monotonic() - killed_at

    with fleet(cfg) as gws:
        elapsed = asyncio.run(scenario(gws))
        # One lease (1 s) for the dead waiters and slot to expire, then 4 x 0.2 s of service.
        assert elapsed < 1.0 + 0.8 + 1.5
        assert asyncio.run(waiting(gws[1], group)) is None
    assert line_is_empty(redis_server, group)


def test_full_line_sheds_with_retry_after_and_waiting_times_out(redis_server,
                                                                fake_openai) -> None:
    group = unique("shed")
    model = f"{group}+gate={group}"
    cfg = lane_config(redis_server, fake_openai, group, model, max_queue_size=3)

    async def scenario(gws: list[Gateway]) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as c:
            with fake_openai.gate(group):  # "first" holds the only slot throughout
                first = asyncio.create_task(c.post(f"{gws[0].url}/v1/chat/completions",
                                                   json=chat_body(group, "first")))
                await in_line(gws[0], fake_openai, group, model, 0, "first", 1)
                # Waits behind "first" for its own timeout only, then leaves the line.
                timed = await c.post(f"{gws[2].url}/v1/chat/completions",
                                     json=chat_body(group, "impatient", timeout=0.3))
                rest = [asyncio.create_task(c.post(f"{gws[i % 3].url}/v1/chat/completions",
                                                   json=chat_body(group, f"w{i}")))
                        for i in range(5)]
                # Three fit in the line; the other two are turned away at once.
                async def two_answered() -> bool:
                    return sum(t.done() for t in rest) >= 2

                await until(two_answered, "two requests to be turned away")
                depth = await waiting(gws[1], group)
                assert depth and depth["waiting"] == 3
            return [await first, *await asyncio.gather(*rest), timed]

    with fleet(cfg) as gws:
        responses = asyncio.run(scenario(gws))
    statuses = [r.status_code for r in responses[:-1]]
    assert statuses.count(200) == 4 and statuses.count(429) == 2
    shed = next(r for r in responses if r.status_code == 429)
    assert shed.json()["error"]["code"] == "queue_full"
    assert int(shed.headers["retry-after"]) >= 1
    timed = responses[-1]
    assert timed.status_code == 408 and timed.json()["error"]["type"] == "timeout"
    served = arrivals(fake_openai, model)
    assert served[0] == "first" and len(served) == 4 and "impatient" not in served
    assert line_is_empty(redis_server, group)


@pytest.mark.timeout(240)
def test_thousand_requests_with_cancellations_leave_nothing_behind(redis_server,
                                                                   fake_openai) -> None:
    group = unique("storm")
    model = f"{group}+delay=0.01"
    cfg = lane_config(redis_server, fake_openai, group, model,
                      deployment={"max_parallel_requests": 4},
                      queue_lease_seconds=2, timeout=60)
    rng = random.Random(7)

    async def scenario(gws: list[Gateway]) -> tuple[list[Any], int]:
        limits = httpx.Limits(max_connections=1200, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=90, limits=limits) as c:
            tasks = [asyncio.create_task(c.post(
                f"{gws[i % 3].url}/v1/chat/completions",
                json=chat_body(group, f"r{i}", priority=rng.randrange(0, 5))))
                for i in range(1000)]
            cancelled = rng.sample(range(1000), 120)
            for i in cancelled:
                await asyncio.sleep(0.005)
                tasks[i].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            return results, len(cancelled)

    with fleet(cfg) as gws:
        results, _ = asyncio.run(scenario(gws))
        for _ in range(50):  # cancelled waiters leave at once; give in-flight ones a moment
            if asyncio.run(waiting(gws[0], group)) is None:
                break
            time.sleep(0.1)
    answered = [r for r in results if isinstance(r, httpx.Response)]
    odd = [(r.status_code, r.text[:200]) for r in answered if r.status_code not in (200, 408, 429)]
    errors = [repr(r)[:200] for r in results if isinstance(r, Exception)
              and not isinstance(r, asyncio.CancelledError)]
    assert not odd and not errors, (odd[:5], errors[:5])
    assert all(r.status_code in (200, 408, 429) for r in answered)
    assert sum(r.status_code == 200 for r in answered) >= 800
    assert fake_openai.peaks()[model] <= 4
    assert line_is_empty(redis_server, group)


def test_long_calls_keep_their_slot_beyond_one_lease(redis_server, fake_openai) -> None:
    group = unique("long")
    model = f"{group}+delay=1.6"
    cfg = lane_config(redis_server, fake_openai, group, model, queue_lease_seconds=0.6)

    async def scenario(gws: list[Gateway]) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as c:
            return list(await asyncio.gather(*(
                c.post(f"{gws[i % 2].url}/v1/chat/completions", json=chat_body(group, f"{i}"))
                for i in range(3))))

    with fleet(cfg, n=2) as gws:
        assert [r.status_code for r in asyncio.run(scenario(gws))] == [200] * 3
    # Each call outlived the lease several times over; renewal kept its slot taken.
    assert fake_openai.peaks()[model] == 1



def test_abandoned_stream_frees_its_slot(redis_server, fake_openai) -> None:
    group = unique("gone")
    model = f"{group}+chunk_delay=0.5"
    cfg = lane_config(redis_server, fake_openai, group, model)
    with fleet(cfg, n=1) as (gw,):
        url = f"{gw.url}/v1/chat/completions"
        with httpx.stream("POST", url, json=chat_body(group, "left", stream=True)) as r:
            assert r.status_code == 200  # the client leaves without reading a byte
        started = time.monotonic()
        r = httpx.post(url, json=chat_body(group, "next"), timeout=10)
        assert r.status_code == 200
        # Not after the stream's natural end (~3 s) nor after a lease: at once.
        assert time.monotonic() - started < 1.0
    assert line_is_empty(redis_server, group)


def test_abandoned_call_keeps_its_slot_until_the_upstream_answers(redis_server,
                                                                  fake_openai) -> None:
    group = unique("orphan")
    model = f"{group}+delay=0.6"
    cfg = lane_config(redis_server, fake_openai, group, model)
    with fleet(cfg, n=1) as (gw,):
        url = f"{gw.url}/v1/chat/completions"
        with pytest.raises(httpx.TimeoutException):
            httpx.post(url, json=chat_body(group, "impatient"), timeout=0.1)
        r = httpx.post(url, json=chat_body(group, "next"), timeout=10)
        assert r.status_code == 200
        assert float(r.headers["x-laneway-queue-ms"]) > 300
    # The upstream was still working on the abandoned call: it never saw two at once.
    assert fake_openai.peaks()[model] == 1


def test_client_leaving_the_line_frees_its_place_at_once(redis_server, fake_openai) -> None:
    group = unique("leave")
    model = f"{group}+delay=1.5"
    cfg = lane_config(redis_server, fake_openai, group, model)  # lease: the default 5 s

    async def scenario(gw: Gateway) -> tuple[int, int]:
        async with httpx.AsyncClient(timeout=30) as c:
            blocker = asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                 json=chat_body(group, "blocker")))
            await asyncio.sleep(0.2)
            with pytest.raises(httpx.TimeoutException):  # waits, then its client gives up
                await c.post(f"{gw.url}/v1/chat/completions",
                             json=chat_body(group, "leaver"), timeout=0.3)
            await asyncio.sleep(0.2)
            depth = await waiting(gw, group)
            await blocker
            return (depth or {}).get("waiting", 0), len(arrivals(fake_openai, model))

    with fleet(cfg, n=1) as (gw,):
        still_waiting, served = asyncio.run(scenario(gw))
    assert still_waiting == 0  # gone within 0.2 s, not after a 5 s lease
    assert served == 1  # the leaver never reached the upstream
    assert line_is_empty(redis_server, group)
