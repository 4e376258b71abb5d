"""Fair share inside a priority, across three gateway processes sharing one Redis, in front of
a deployment with one slot: a tenant's flood does not make a later tenant wait behind it, and
weights split the service."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.lanes.test_priority_fleet import lane_config, warm_up
from tests.support.cluster import chat_body, fleet, unique, until
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway
from tests.support.redis_server import RedisServer

MASTER = "sk-fair-master-0123456789"


def served_order(upstream: FakeUpstream, model: str) -> list[str]:
    """The `user` of each request the upstream received, in arrival order (warm-ups left out)."""
    return [r["body"].get("user", "") for r in upstream.requests()
            if r["body"].get("model") == model and
            r["body"]["messages"][0]["content"] != "warm-up"]


async def depth_reaches(gw: Gateway, group: str, n: int) -> None:
    async def deep() -> bool:
        async with httpx.AsyncClient(headers=gw.headers()) as c:
            status = (await c.get(f"{gw.url}/queue/status")).json()
        line = next((g for g in status["groups"] if g["model_group"] == group), None)
        return bool(line) and line["waiting"] >= n  # type: ignore[index]

    await until(deep, f"{n} requests in line")


async def send(gws: list[Gateway], group: str, tag: str, count: int,
               key: str | None = None, **extra: Any) -> list[asyncio.Task[httpx.Response]]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    client = httpx.AsyncClient(timeout=120, headers=headers)

    async def one(i: int) -> httpx.Response:
        body = {**chat_body(group, f"{tag}-{i}"), "max_tokens": 16, **extra}
        return await client.post(f"{gws[i % 3].url}/v1/chat/completions", json=body)

    return [asyncio.create_task(one(i)) for i in range(count)]


def test_a_late_tenant_is_interleaved_with_a_flood(redis_server: RedisServer,
                                                   fake_openai: FakeUpstream) -> None:
    group = unique("fair")
    model = f"{group}+gate={group}"
    cfg = lane_config(redis_server, fake_openai, group, model, fairness="user")

    seen: dict[str, Any] = {}

    async def scenario(gws: list[Gateway]) -> list[httpx.Response]:
        with fake_openai.gate(group):
            tasks = await send(gws, group, "a", 41, user="A")  # one holds the slot
            await depth_reaches(gws[0], group, 40)
            tasks += await send(gws, group, "b", 10, user="B")
            await depth_reaches(gws[0], group, 50)
            async with httpx.AsyncClient(base_url=gws[1].url) as c:
                status = (await c.get("/queue/status")).json()
                seen["metrics"] = (await c.get("/metrics")).text
            seen["tenants"] = next(g["tenants"] for g in status["groups"]
                                   if g["model_group"] == group)
        return list(await asyncio.gather(*tasks))

    with fleet(cfg, env={"LANEWAY_METRICS": "prometheus"}) as gws:
        warm_up(gws, group)
        responses = asyncio.run(scenario(gws))
    assert all(r.status_code == 200 for r in responses)
    # While both wait, every gateway reports each tenant's line and share from the one clock.
    tenants = {t["tenant"]: t for t in seen["tenants"]}
    assert (tenants["u:A"]["waiting"], tenants["u:B"]["waiting"]) == (40, 10), tenants
    assert tenants["u:A"]["served_share"] > 0.5 and tenants["u:B"]["served_tokens"] == 0
    assert f'laneway_fair_share_waiting{{model_group="{group}",tenant="u:B"}} 10.0' in (
        seen["metrics"]), seen["metrics"]
    order = served_order(fake_openai, model)[1:]  # after the one that held the slot
    assert len(order) == 50
    # B arrived behind 40 of A's requests but is served alternately with A, not after them.
    assert order[:20].count("B") >= 9, order
    # While both are backlogged, their served counts (equal costs) never drift apart by more
    # than two requests: twice the largest request's cost.
    a = b = 0
    for user in order[:20]:
        a, b = a + (user == "A"), b + (user == "B")
        assert abs(a - b) <= 2, order


def test_weights_split_the_service_three_to_one(redis_server: RedisServer,
                                                fake_openai: FakeUpstream) -> None:
    group = unique("fairw")
    model = f"{group}+gate={group}"
    cfg = {**lane_config(redis_server, fake_openai, group, model, fairness="key"),
           "general_settings": {"master_key": MASTER}}

    async def scenario(gws: list[Gateway]) -> list[str]:
        async with httpx.AsyncClient(base_url=gws[0].url, timeout=30,
                                     headers={"authorization": f"Bearer {MASTER}"}) as c:
            keys = [(await c.post("/key/generate", json={"fair_share_weight": w})).json()["key"]
                    for w in (3, 1)]
        tasks: list[asyncio.Task[httpx.Response]] = []
        with fake_openai.gate(group):
            for i, (key, user) in enumerate(zip(keys, ("heavy", "light"), strict=True)):
                tasks += await send(gws, group, user, 40 + i, key, user=user)
            await depth_reaches(gws[0], group, 80)
        responses = await asyncio.gather(*tasks)
        assert all(r.status_code == 200 for r in responses)
        return served_order(fake_openai, model)

    with fleet(cfg, key=MASTER) as gws:
        for gw in gws:  # warm up with the master key
            httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, "warm-up"),
                       headers={"authorization": f"Bearer {MASTER}"}, timeout=30)
        order = asyncio.run(scenario(gws))[1:]
    contended = order[:40]  # both backlogged throughout
    heavy = contended.count("heavy")
    assert 27 <= heavy <= 33, (heavy, order)  # 3:1 is 30 of 40, within 10 %
