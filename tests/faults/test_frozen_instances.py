"""An instance frozen mid-flight (SIGSTOP, as a frozen Lambda or a CPU-starved container looks
from outside) and thawed later (SIGCONT), in a fleet sharing one Redis."""

from __future__ import annotations

import asyncio
import time

import httpx

from router.options import RouterOptions
from tests.faults.helpers import (
    arrived,
    freeze,
    group_config,
    in_flight,
    leftovers,
    thaw,
    until_true,
    waiting,
)
from tests.support.cluster import chat_body, fleet, unique
from tests.support.gateway import Gateway
from tests.support.redis_fault_proxy import start_fault_proxy


def warm_up(gws: list[Gateway], group: str) -> None:
    for gw in gws:
        httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, "warm-up"),
                   timeout=30).raise_for_status()


def test_frozen_instance_gives_its_capacity_back_and_rejoins_when_thawed(
        redis_server, fake_openai) -> None:
    group = unique("frozen")
    model = f"{group}+gate={group}"
    cfg = group_config(redis_server.url, fake_openai, group, model, parallel=2, timeout=30)
    lease = RouterOptions().queue_lease  # the default: what a fleet gets without tuning

    async def scenario(victim: Gateway, survivor: Gateway) -> dict[str, list[httpx.Response]]:
        async with httpx.AsyncClient(timeout=30) as c:
            def send(gw: Gateway, tag: str, prio: int) -> asyncio.Task[httpx.Response]:
                return asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                  json=chat_body(group, tag, priority=prio)))

            with fake_openai.gate(group):
                running = [send(victim, f"v-run-{i}", 0) for i in range(2)]
                await until_true(lambda: len(in_flight(fake_openai, model)) == 2,
                                 "the victim's two calls to reach the upstream")
                queued = []
                for i in range(3):  # ahead of everything the survivor sends
                    queued.append(send(victim, f"v-wait-{i}", 0))
                    await until_true(lambda n=i + 1: _waits(survivor, group, n),
                                     f"victim waiter {i}")
                behind = []
                for i in range(3):
                    behind.append(send(survivor, f"s-{i}", 5))
                    await until_true(lambda n=i + 4: _waits(survivor, group, n),
                                     f"survivor waiter {i}")
                freeze(victim)
                frozen_at = time.time()
            # The gate is open: the victim's two calls are answered upstream (into a process
            # that cannot read them), yet Redis still counts its slots and waiters.
            try:
                served_behind = list(await asyncio.gather(*behind))
                first = min(r["t"] for r in arrived(fake_openai, model, "s-"))
                assert first - frozen_at < 2.0, "capacity came back too late"
                # Nothing of the frozen instance is left in the line for anyone to wait behind.
                assert await waiting(survivor, group) == 0
                await asyncio.sleep(max(0.0, frozen_at + 2 * lease - time.time()))
            finally:
                thaw(victim)
            return {"running": list(await asyncio.gather(*running)),
                    "queued": list(await asyncio.gather(*queued)), "behind": served_behind}

    with fleet(cfg, n=2) as gws:
        warm_up(gws, group)
        out = asyncio.run(scenario(*gws))
        victim_log = gws[0].stop()
    # The survivor's requests went ahead while the victim was frozen; once thawed, the victim
    # heard that its waiters had lost their place, and they joined the line again.
    assert [r.status_code for r in out["behind"]] == [200] * 3
    assert [r.status_code for r in out["running"]] == [200] * 2
    assert [r.status_code for r in out["queued"]] == [200] * 3
    assert "lost their place in line" in victim_log
    assert fake_openai.peaks()[model] <= 2
    assert leftovers(redis_server.url, group) == []


async def _waits(gw: Gateway, group: str, n: int) -> bool:
    return await waiting(gw, group) >= n


def test_thawed_instance_does_not_use_an_admission_whose_lease_ran_out(
        redis_server, fake_openai) -> None:
    """The victim's admission ran in Redis just before it froze; its answer is read only after
    the thaw, when the slot has long been given to the survivor. Sending the call then would
    put two calls on a deployment allowed one: the victim gives the admission back unsent and
    joins the line again, to be served when the slot is free."""
    group = unique("stale")
    model = f"{group}+gate={group}"
    lease = 0.8  # frozen for two leases, still inside the 2 s Redis call timeout
    with start_fault_proxy(redis_server.port) as proxy:
        cfgs = [group_config(url, fake_openai, group, model, queue_lease_seconds=lease)
                for url in (proxy.url, redis_server.url)]

        async def scenario(victim: Gateway, survivor: Gateway) -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as c:
                def send(gw: Gateway, tag: str) -> asyncio.Task[httpx.Response]:
                    return asyncio.create_task(c.post(f"{gw.url}/v1/chat/completions",
                                                      json=chat_body(group, tag)))

                proxy.stall()  # Redis runs the victim's admission; the answer is held back
                stale = send(victim, "v-stale")
                await until_true(lambda: any(":run" in k for k in leftovers(
                    redis_server.url, group)), "the victim's admission to run in Redis")
                freeze(victim)
                frozen_at = time.monotonic()
                proxy.heal()  # the answer now sits unread in the frozen process's socket
                with fake_openai.gate(group):
                    other = send(survivor, "s-0")
                    await until_true(lambda: len(in_flight(fake_openai, model)) == 1,
                                     "the survivor's call to take the expired slot")
                    await asyncio.sleep(max(0.0, frozen_at + 2 * lease - time.monotonic()))
                    thaw(victim)
                    # It waits in line (the bug this guards against: its call reaching the
                    # upstream while the survivor's still holds the only slot).
                    await until_true(lambda: waiting(survivor, group),
                                     "the thawed victim to wait in line")
                    assert len(in_flight(fake_openai, model)) == 1 and not stale.done()
                return [await stale, await other]

        with fleet(cfgs) as gws:
            warm_up(gws, group)
            requeued, served = asyncio.run(scenario(*gws))
    assert requeued.status_code == 200, requeued.text
    assert served.status_code == 200
    assert len(arrived(fake_openai, model, "v-stale")) == 1  # sent once, when the slot was free
    assert fake_openai.peaks()[model] == 1
    assert leftovers(redis_server.url, group) == []


def test_default_lease_returns_capacity_within_two_seconds() -> None:
    """A dead instance's entries go within a lease, and the survivors' next renewal (every
    lease/3) clears its waiters from the head of the line; `queue_lease_seconds` still sets it."""
    default = RouterOptions().queue_lease
    assert default * 4 / 3 < 2.0
    assert RouterOptions.from_settings({"queue_lease_seconds": 0.6}).queue_lease == 0.6
