"""Capacity reserved per tier, the aging of waiters, and the per-tenant shares, on every backend
(in process, Redis, Redis Cluster): the rules of lua/tiers.lua and lua/fair_status.lua."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from router.state.base import AdmitRequest, Admitted, Candidate, Release, Waiting

pytestmark = pytest.mark.asyncio(loop_scope="function")

ONE = Candidate("d", max_parallel=1)
TIERS = (("prod", 0.9), ("dev", 0.1), ("default", 0.0))
TIER = {name: i for i, (name, _) in enumerate(TIERS)}


def group() -> str:
    return "t-" + uuid.uuid4().hex[:8]


def req(g: str, rid: str, tier: str = "", priority: int = 0, aging: float = 0.0,
        tenant: str = "", cost: int = 10) -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=priority,
                        tokens=1, candidates=[ONE], tiers=TIERS if tier else (),
                        tier=TIER.get(tier, 0), aging=aging, fair_tenant=tenant, fair_cost=cost)


async def next_served(state, g: str, holder: str, waiting: dict[str, AdmitRequest]) -> str:
    """Release the holder; ask every waiter once: exactly one is admitted, and returned."""
    await state.release(Release(g, "d", holder + ".1"))
    admitted = [rid for rid, r in list(waiting.items()) if await state.admit(r) == Admitted(0)]
    assert len(admitted) == 1, admitted
    del waiting[admitted[0]]
    return admitted[0]


async def test_under_saturation_each_tier_gets_its_share(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.admit(req(g, "p0", "prod")) == Admitted(0)
    waiting = {}
    for i in range(1, 21):
        waiting[f"p{i}"] = req(g, f"p{i}", "prod")
    for i in range(1, 6):
        waiting[f"d{i}"] = req(g, f"d{i}", "dev")
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    holder, order = "p0", []
    for _ in range(20):
        holder = await next_served(state, g, holder, waiting)
        order.append(holder)
    dev = sum(rid.startswith("d") for rid in order)
    # 0.9 / 0.1 of 21 admissions: two of them dev's, even though dev arrived last.
    assert 1 <= dev <= 3, order
    assert order[0].startswith("d"), order  # dev had been served nothing: it goes first
    # Inside a tier the line's order holds.
    prod = [rid for rid in order if rid.startswith("p")]
    assert prod == sorted(prod, key=lambda r: int(r[1:]))


async def test_an_idle_tier_lends_its_share_and_takes_it_back(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.admit(req(g, "p0", "prod")) == Admitted(0)
    waiting = {f"p{i}": req(g, f"p{i}", "prod") for i in range(1, 6)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    holder = "p0"
    for i in range(1, 4):  # dev has no demand: prod takes all of the capacity
        holder = await next_served(state, g, holder, waiting)
        assert holder == f"p{i}"
    # dev arrives behind prod's line and gets the very next slot that comes free.
    waiting["d1"] = req(g, "d1", "dev")
    assert isinstance(await state.admit(waiting["d1"]), Waiting)
    assert await next_served(state, g, holder, waiting) == "d1"


async def test_a_tier_with_no_share_still_uses_free_capacity(backend) -> None:
    state, _ = backend
    g = group()
    # Work conserving: nobody else wants it, so the share-less default tier takes it.
    assert await state.admit(req(g, "x0", "default")) == Admitted(0)
    assert isinstance(await state.admit(req(g, "x1", "default")), Waiting)
    assert isinstance(await state.admit(req(g, "p1", "prod")), Waiting)
    waiting = {"x1": req(g, "x1", "default"), "p1": req(g, "p1", "prod")}
    assert await next_served(state, g, "x0", waiting) == "p1"
    assert await next_served(state, g, "p1", waiting) == "x1"


async def test_the_owed_tier_is_woken_when_another_is_refused(backend) -> None:
    state, wakes = backend
    g = group()
    assert await state.admit(req(g, "d0", "dev")) == Admitted(0)  # dev used its share
    assert isinstance(await state.admit(req(g, "d1", "dev")), Waiting)  # heads the line
    assert isinstance(await state.admit(req(g, "p1", "prod")), Waiting)
    await state.release(Release(g, "d", "d0.1"))
    await wakes.wait_for("d1")  # the release wakes the head of the line...
    assert isinstance(await state.admit(req(g, "d1", "dev")), Waiting)
    await wakes.wait_for("p1")  # ...which, not owed the slot, passes the word to prod
    assert await state.admit(req(g, "p1", "prod")) == Admitted(0)


async def serve_stream(state, g: str, aging: float, seconds: float) -> float | None:
    """One slot; a priority-9 waiter against a stream of priority-0 requests (one arrives with
    every slot that frees). Returns when the low waiter was admitted (s), None if never."""
    start = time.monotonic()
    assert await state.admit(req(g, "h0", priority=0, aging=aging)) == Admitted(0)
    low = req(g, "low", priority=9, aging=aging)
    assert isinstance(await state.admit(low), Waiting)
    holder, i = "h0", 0
    while time.monotonic() - start < seconds:
        i += 1
        high = req(g, f"h{i}", priority=0, aging=aging)
        first = await state.admit(high)
        assert isinstance(first, Waiting)
        await asyncio.sleep(0.02)
        await state.release(Release(g, "d", holder + ".1"))
        if await state.admit(low) == Admitted(0):
            return time.monotonic() - start
        if await state.admit(high) != Admitted(0):  # low aged between the two asks
            assert await state.admit(low) == Admitted(0)
            return time.monotonic() - start
        holder = high.request_id
    return None


async def test_strict_priority_starves_a_low_waiter_under_a_stream(backend) -> None:
    state, _ = backend
    assert await serve_stream(state, group(), aging=0.0, seconds=0.6) is None


async def test_aging_bounds_the_wait_of_a_low_waiter(backend) -> None:
    state, _ = backend
    waited = await serve_stream(state, group(), aging=0.3, seconds=2.0)
    assert waited is not None and 0.3 <= waited < 0.3 + 0.4, waited


async def test_aged_waiters_go_oldest_first_and_keep_their_tier(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.admit(req(g, "p0", "prod", aging=0.1)) == Admitted(0)
    for rid, prio in (("a", 9), ("b", 5)):
        assert isinstance(await state.admit(req(g, rid, "prod", priority=prio, aging=0.1)),
                          Waiting)
    await asyncio.sleep(0.15)
    waiting = {"c": req(g, "c", "prod", priority=0, aging=0.1)}
    assert isinstance(await state.admit(waiting["c"]), Waiting)  # promotes a, then b
    assert [(d.priority, d.count) for d in await state.line(g)] == [(-(2**20), 2), (0, 1)]
    waiting |= {r: req(g, r, "prod", priority=p, aging=0.1) for r, p in (("a", 9), ("b", 5))}
    holder, order = "p0", []
    for _ in range(3):
        holder = await next_served(state, g, holder, waiting)
        order.append(holder)
    assert order == ["a", "b", "c"]


async def test_shares_report_waiting_and_served_per_tenant(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.shares(g) == []
    assert await state.admit(req(g, "a0", tenant="A", cost=10)) == Admitted(0)
    for rid, tenant in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        assert isinstance(await state.admit(req(g, rid, tenant=tenant, cost=30)), Waiting)
    # a0 really cost 20 weighted tokens, not 10.
    await state.release(Release(g, "d", "a0.1", fair_tenant="A", fair_delta=10))
    assert await state.admit(req(g, "b1", tenant="B", cost=30)) == Admitted(0)
    shares = {s.tenant: s for s in await state.shares(g)}
    assert (shares["A"].waiting, shares["A"].served) == (2, 20)
    assert (shares["B"].waiting, shares["B"].served) == (0, 30)
    assert shares["B"].share == pytest.approx(0.6)

