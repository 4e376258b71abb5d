"""Fair share, reserved tiers and aging across three gateway processes sharing one Redis, in
front of a deployment with one slot: what a client of each tenant or tier sees."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.lanes.test_fair_share_fleet import MASTER, depth_reaches, send, served_order
from tests.lanes.test_priority_fleet import lane_config, warm_up
from tests.support.cluster import chat_body, fleet, unique, until
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway
from tests.support.redis_server import RedisServer


def jain(xs: list[float]) -> float:
    """Jain's fairness index: 1 when everyone got the same, 1/n when one got everything."""
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


def skewed_run(redis_server: RedisServer, upstream: FakeUpstream, fairness: str
               ) -> list[str]:
    """Four tenants (the `user` field), one asking for ten times what each other one does,
    all backlogged on one slot: the order the upstream served them in."""
    group = unique(f"jain{fairness}")
    model = f"{group}+gate={group}"
    cfg = lane_config(redis_server, upstream, group, model, fairness=fairness)

    async def scenario(gws: list[Gateway]) -> None:
        tasks: list[asyncio.Task[httpx.Response]] = []
        with upstream.gate(group):
            tasks += await send(gws, group, "a", 61, user="A")  # one holds the slot
            for user in "BCD":
                tasks += await send(gws, group, user.lower(), 6, user=user)
            await depth_reaches(gws[0], group, 78)
        assert all(r.status_code == 200 for r in await asyncio.gather(*tasks))

    with fleet(cfg) as gws:
        warm_up(gws, group)
        asyncio.run(scenario(gws))
    return served_order(upstream, model)[1:]


def test_jain_index_over_four_skewed_tenants(redis_server: RedisServer,
                                             fake_openai: FakeUpstream) -> None:
    order = skewed_run(redis_server, fake_openai, "user")
    contended = order[:24]  # every tenant backlogged throughout
    assert jain([contended.count(u) for u in "ABCD"]) >= 0.95, contended
    fifo = skewed_run(redis_server, fake_openai, "off")[:24]
    assert jain([fifo.count(u) for u in "ABCD"]) < 0.5, fifo  # arrival order: A's flood first


def tier_config(redis_server: RedisServer, upstream: FakeUpstream, group: str
                ) -> dict[str, Any]:
    return {**lane_config(redis_server, upstream, group, f"{group}+gate={group}",
                          priority_reservation={"prod": 0.9, "dev": 0.1}, fairness="off"),
            "general_settings": {"master_key": MASTER}}


def test_reserved_tiers_share_a_saturated_deployment_and_lend_what_is_unused(
        redis_server: RedisServer, fake_openai: FakeUpstream) -> None:
    group = unique("tiers")
    model = f"{group}+gate={group}"

    async def scenario(gws: list[Gateway]) -> tuple[list[str], float]:
        async with httpx.AsyncClient(base_url=gws[0].url, timeout=30,
                                     headers={"authorization": f"Bearer {MASTER}"}) as c:
            keys = {tier: (await c.post("/key/generate", json={
                "metadata": {"priority": tier}})).json()["key"] for tier in ("prod", "dev")}
        # Lent: prod has no demand, so dev (10 %) uses the whole deployment.
        started = time.monotonic()
        alone = await asyncio.gather(*await send(gws, group, "dev", 12, keys["dev"],
                                                 user="dev"))
        lent = time.monotonic() - started
        assert all(r.status_code == 200 for r in alone)
        fake_openai.clear()
        tasks: list[asyncio.Task[httpx.Response]] = []
        with fake_openai.gate(group):
            tasks += await send(gws, group, "prod", 41, keys["prod"], user="prod")
            await depth_reaches(gws[0], group, 40)
            tasks += await send(gws, group, "dev", 20, keys["dev"], user="dev")
            await depth_reaches(gws[0], group, 60)
        assert all(r.status_code == 200 for r in await asyncio.gather(*tasks))
        return served_order(fake_openai, model), lent

    with fleet(tier_config(redis_server, fake_openai, group), key=MASTER) as gws:
        for gw in gws:
            httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, "warm-up"),
                       headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
        order, lent = asyncio.run(scenario(gws))
    assert lent < 5.0
    # Saturated, both backlogged: dev arrived behind 40 of prod's requests, yet gets its 10 %
    # of the service, and what it was lent a moment ago is not held against it.
    contended = order[1:41]  # prod still has a backlog throughout
    dev = contended.count("dev")
    assert 3 <= dev <= 5, " ".join(contended)
    assert "dev" in contended[:12], " ".join(contended)


def test_aging_bounds_a_low_priority_wait_under_a_high_priority_stream(
        redis_server: RedisServer, fake_openai: FakeUpstream) -> None:
    group = unique("aging")
    model = f"{group}+gate={group}"
    cfg = lane_config(redis_server, fake_openai, group, model, priority_aging=0.5)

    async def scenario(gws: list[Gateway]) -> None:
        async with httpx.AsyncClient(timeout=60) as c:
            async def ask(i: int, tag: str, priority: int) -> None:
                body = chat_body(group, tag, priority=priority, max_tokens=4)
                r = await c.post(f"{gws[i % 3].url}/v1/chat/completions", json=body)
                assert r.status_code == 200

            with fake_openai.gate(group):
                tasks = [asyncio.create_task(ask(0, "holder", 0))]
                await asyncio.sleep(0.2)
                tasks.append(asyncio.create_task(ask(1, "low", 9)))
                await depth_reaches(gws[0], group, 1)
                # A stream of more important requests for twice the aging bound.
                for i in range(50):
                    tasks.append(asyncio.create_task(ask(i, f"high-{i}", 0)))
                    await asyncio.sleep(0.02)
                await depth_reaches(gws[0], group, 51)
            await asyncio.gather(*tasks)

    with fleet(cfg) as gws:
        warm_up(gws, group)
        asyncio.run(scenario(gws))
    tags = [r["body"]["messages"][0]["content"] for r in fake_openai.requests()
            if r["body"].get("model") == model and r["body"]["messages"][0]["content"] != "warm-up"]
    # Strict priority would serve it after all 50; waiting past 0.5 s, it is overtaken by no
    # request that arrived later than that after it: it goes first.
    assert tags[:2] == ["holder", "low"], tags


def test_a_tier_gets_back_its_share_of_the_rpm_window_a_busy_tier_borrowed(
        redis_server: RedisServer, fake_openai: FakeUpstream) -> None:
    """Held per deployment: the engine names each attempt's slot by its tier, so what prod
    took of the rpm window while dev was idle is counted against prod's half, not dev's."""
    group = unique("held")
    model = f"{group}+gate={group}"
    cfg = {**lane_config(redis_server, fake_openai, group, model, deployment={"rpm": 10},
                         priority_reservation={"prod": 0.5, "dev": 0.5}, fairness="off"),
           "general_settings": {"master_key": MASTER}}

    async def served() -> list[str]:
        return await asyncio.to_thread(served_order, fake_openai, model)

    async def scenario(gws: list[Gateway]) -> list[str]:
        async with httpx.AsyncClient(base_url=gws[0].url, timeout=30,
                                     headers={"authorization": f"Bearer {MASTER}"}) as c:
            keys = {tier: (await c.post("/key/generate", json={
                "metadata": {"priority": tier}})).json()["key"] for tier in ("prod", "dev")}
        for i in range(6):  # dev idle: prod uses 6 of the 10 in the window
            (one,) = await send(gws[i % 3:], group, f"prod{i}", 1, keys["prod"], user="prod")
            assert (await one).status_code == 200
        tasks: list[asyncio.Task[httpx.Response]] = []
        with fake_openai.gate(group):
            tasks += await send(gws, group, "prod-held", 1, keys["prod"], user="prod")
            await until(lambda: _count(served, 7), "prod's 7th call at the upstream")
            tasks += await send(gws, group, "dev", 5, keys["dev"], user="dev")
            tasks += await send(gws, group, "prod", 5, keys["prod"], user="prod")
            await depth_reaches(gws[0], group, 10)
        await until(lambda: _count(served, 10), "the window's 10 calls")
        await asyncio.sleep(0.3)  # nothing more: the window is full
        order = await served()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return order

    with fleet(cfg, key=MASTER) as gws:
        order = asyncio.run(scenario(gws))
    # Dev is owed 5 of the window; the 3 left all go to it, though prod waited too.
    assert order == ["prod"] * 7 + ["dev"] * 3, order


async def _count(served: Any, n: int) -> bool:
    return len(await served()) >= n
