"""Fair share inside a priority, on every backend: a request's place among its priority is its
tenant's virtual service (start-time fair queueing over weighted tokens), not its arrival."""

from __future__ import annotations

import uuid

import pytest

from router.state.base import AdmitRequest, Admitted, Candidate, Release, Waiting

pytestmark = pytest.mark.asyncio(loop_scope="function")

ONE = Candidate("d", max_parallel=1)


def group() -> str:
    return "f-" + uuid.uuid4().hex[:8]


def req(g: str, rid: str, tenant: str, cost: int = 10, priority: int = 0) -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=priority,
                        tokens=1, candidates=[ONE], fair_tenant=tenant, fair_cost=cost)


async def positions(state, g: str, waiting: list[tuple[str, str]]) -> list[str]:
    """The waiters in the order the line serves them."""
    ranked = []
    for rid, tenant in waiting:
        result = await state.admit(req(g, rid, tenant))
        assert isinstance(result, Waiting)
        ranked.append((result.position, rid))
    return [rid for _, rid in sorted(ranked)]


async def serve_all(state, g: str, holder: str, waiting: dict[str, str]) -> list[str]:
    """Release the holder, then admit whoever is next, until nobody waits: the service order."""
    order = []
    while waiting:
        await state.release(Release(g, "d", holder + ".1"))
        admitted = [rid for rid, tenant in list(waiting.items())
                    if await state.admit(req(g, rid, tenant)) == Admitted(0)]
        assert len(admitted) == 1, admitted
        holder = admitted[0]
        order.append(holder)
        del waiting[holder]
    return order


async def test_a_late_tenant_is_interleaved_with_a_flood(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.admit(req(g, "a0", "A")) == Admitted(0)
    flood = [(f"a{i}", "A") for i in range(1, 6)]
    late = [(f"b{i}", "B") for i in range(1, 3)]
    for rid, tenant in flood + late:
        assert isinstance(await state.admit(req(g, rid, tenant)), Waiting)
    order = await serve_all(state, g, "a0", dict(flood + late))
    # B arrived last but had been served nothing: its requests go first among equals.
    assert order.index("b1") < order.index("a2") and order.index("b2") < order.index("a3")
    assert [r for r in order if r.startswith("a")] == ["a1", "a2", "a3", "a4", "a5"]


async def test_priority_still_comes_first(backend) -> None:
    state, _ = backend
    g = group()
    await state.admit(req(g, "a0", "A"))
    for i in range(3):
        await state.admit(req(g, f"b{i}", "B", priority=5))  # B has had nothing, but p5
    await state.admit(req(g, "a1", "A", priority=0))
    order = await positions(state, g, [("a1", "A"), ("b0", "B"), ("b1", "B"), ("b2", "B")])
    assert order[0] == "a1"


async def test_cost_decides_the_share(backend) -> None:
    state, _ = backend
    g = group()
    await state.admit(req(g, "x", "X", cost=1))
    # A asks for expensive requests (or has a small weight), B for cheap ones.
    waiting = {}
    for i in range(4):
        assert isinstance(await state.admit(req(g, f"a{i}", "A", cost=30)), Waiting)
        waiting[f"a{i}"] = "A"
        assert isinstance(await state.admit(req(g, f"b{i}", "B", cost=10)), Waiting)
        waiting[f"b{i}"] = "B"
    order = await serve_all(state, g, "x", waiting)
    assert order[:4].count("a0") + order[:4].count("a1") <= 1
    assert {"b0", "b1", "b2"} <= set(order[:4])


async def test_idle_tenant_earns_no_credit(backend) -> None:
    state, _ = backend
    g = group()
    await state.admit(req(g, "a0", "A", cost=100))
    for i in range(1, 9):
        await state.admit(req(g, f"a{i}", "A", cost=100))
    order = await serve_all(state, g, "a0", {f"a{i}": "A" for i in range(1, 6)})
    assert order == ["a1", "a2", "a3", "a4", "a5"]
    # B shows up only now. Started at zero it would take the next three turns in a row; level
    # with the clock it alternates with A.
    for i in range(1, 4):
        assert isinstance(await state.admit(req(g, f"b{i}", "B", cost=100)), Waiting)
    waiting = [("a6", "A"), ("a7", "A"), ("a8", "A"), ("b1", "B"), ("b2", "B"), ("b3", "B")]
    ranked = await positions(state, g, waiting)
    assert ranked[0] == "b1" and ranked.index("a6") < ranked.index("b3")


async def test_real_usage_corrects_the_tenant_clock(backend) -> None:
    state, _ = backend
    g = group()
    await state.admit(req(g, "a0", "A", cost=10))
    await state.admit(req(g, "b0", "B", cost=10))  # waits, start 0
    # a0 turned out to use 1,000 weighted tokens, not 10.
    await state.release(Release(g, "d", "a0.1", fair_tenant="A", fair_delta=990))
    assert await state.admit(req(g, "b0", "B", cost=10)) == Admitted(0)
    for rid, tenant in (("a1", "A"), ("b1", "B")):
        assert isinstance(await state.admit(req(g, rid, tenant, cost=10)), Waiting)
    assert await positions(state, g, [("a1", "A"), ("b1", "B")]) == ["b1", "a1"]
