"""One contract for the state backends: the in-process default, Redis, and Redis Cluster."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from router.state.base import AdmitRequest, Admitted, Candidate, Full, Release, Waiting

pytestmark = pytest.mark.asyncio(loop_scope="function")


def group() -> str:
    return "g-" + uuid.uuid4().hex[:8]


def req(g: str, rid: str, *cands: Candidate, priority: int = 0, tokens: int = 1, **kw: object):
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=priority,
                        tokens=tokens, candidates=cands, **kw)  # type: ignore[arg-type]


async def test_admits_within_rpm_then_queues(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d1", rpm=2)
    assert await state.admit(req(g, "a", c)) == Admitted(0)
    assert await state.admit(req(g, "b", c)) == Admitted(0)
    third = await state.admit(req(g, "c", c))
    assert isinstance(third, Waiting) and third.position == 0
    # The oldest admission leaves the 60 s window in about a minute, not at a minute boundary.
    assert third.retry_in is not None and 59.0 < third.retry_in <= 60.0


async def test_second_deployment_takes_overflow(backend) -> None:
    state, _ = backend
    g = group()
    a, b = Candidate("a", rpm=1), Candidate("b", rpm=1)
    assert await state.admit(req(g, "r1", a, b)) == Admitted(0)
    assert await state.admit(req(g, "r2", a, b)) == Admitted(1)
    assert isinstance(await state.admit(req(g, "r3", a, b)), Waiting)


async def test_priority_then_fifo_order(backend) -> None:
    state, wakes = backend
    g, c = group(), Candidate("d", max_parallel=1)
    assert await state.admit(req(g, "run", c)) == Admitted(0)
    order = [("p5-a", 5), ("p5-b", 5), ("p0-a", 0), ("p0-b", 0), ("p9", 9)]
    for rid, prio in order:
        assert isinstance(await state.admit(req(g, rid, c, priority=prio)), Waiting)
    positions = {}
    for rid, prio in order:
        w = await state.admit(req(g, rid, c, priority=prio))
        assert isinstance(w, Waiting)
        positions[rid] = w.position
    assert sorted(positions, key=positions.get) == ["p0-a", "p0-b", "p5-a", "p5-b", "p9"]
    # A newcomer with a better priority than everyone waiting is still not admitted while the
    # single slot is busy; after release, only the head may take the slot.
    await state.release(Release(g, "d", "run.1"))
    await wakes.wait_for("p0-a")
    assert isinstance(await state.admit(req(g, "p5-a", c, priority=5)), Waiting)
    assert await state.admit(req(g, "p0-a", c)) == Admitted(0)


async def test_lower_priority_number_admitted_before_waiting_higher(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    assert await state.admit(req(g, "x", c)) == Admitted(0)
    assert isinstance(await state.admit(req(g, "late", c, priority=100)), Waiting)
    await state.release(Release(g, "d", "x.1"))
    # "vip" arrives after "late" but ranks before it, so it is admitted straight away.
    assert await state.admit(req(g, "vip", c, priority=0)) == Admitted(0)


async def test_priority_zero_is_a_real_priority(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    await state.admit(req(g, "one", c, priority=1))
    w = await state.admit(req(g, "zero", c, priority=0))
    assert isinstance(w, Waiting) and w.position == 0


async def test_cancel_of_head_wakes_next(backend) -> None:
    state, wakes = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    await state.admit(req(g, "h", c))
    await state.admit(req(g, "n", c))
    assert await state.cancel(g, "h") is True
    await wakes.wait_for("n")
    assert await state.cancel(g, "h") is False
    assert [(d.priority, d.count) for d in await state.line(g)] == [(0, 1)]


async def test_a_renewal_announces_its_head_again(backend) -> None:
    """A wake-up lost on its way is made good by the head's next renewal, so waiters behind the
    head need no frequent check of their own."""
    state, wakes = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    await state.admit(req(g, "head", c))
    await state.admit(req(g, "behind", c))
    wakes.seen.clear()
    assert await state.renew(g, ["behind"], [], 5) == []
    await state.admit(req(g, "probe", c))  # a later call: any wake of the renewal came first
    await asyncio.sleep(0.05)
    assert "head" not in wakes.seen  # not this instance's waiter: nothing to announce
    assert await state.renew(g, ["head", "behind"], [], 5) == []
    await wakes.wait_for("head")
    assert "behind" not in wakes.seen


async def test_expired_waiter_leaves_the_line(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c, lease=5))
    await state.admit(req(g, "ghost", c, lease=0.15))
    live = await state.admit(req(g, "live", c, lease=5))
    assert isinstance(live, Waiting) and live.position == 1
    await asyncio.sleep(0.25)
    again = await state.admit(req(g, "live", c, lease=5))
    assert isinstance(again, Waiting) and again.position == 0
    assert await state.renew(g, ["ghost", "live"], [], 5) == ["ghost"]


async def test_crashed_slot_comes_back_after_its_lease(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    assert await state.admit(req(g, "crashed", c, lease=0.15)) == Admitted(0)
    assert isinstance(await state.admit(req(g, "next", c)), Waiting)
    await asyncio.sleep(0.25)
    assert await state.admit(req(g, "next", c)) == Admitted(0)


async def test_renew_keeps_slot_and_waiter(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    assert await state.admit(req(g, "long", c, lease=0.2)) == Admitted(0)
    await state.admit(req(g, "w", c, lease=0.2))
    for _ in range(3):
        await asyncio.sleep(0.1)
        assert await state.renew(g, ["w"], [("d", "long.1")], 0.2) == []
    w = await state.admit(req(g, "w", c, lease=0.2))
    assert isinstance(w, Waiting)


async def test_tpm_reservation_and_reconcile(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", tpm=100)
    assert await state.admit(req(g, "a", c, tokens=60)) == Admitted(0)
    assert isinstance(await state.admit(req(g, "b", c, tokens=60)), Waiting)
    await state.cancel(g, "b")
    # The real usage was 20 tokens: the window now holds 20, so 60 more fit.
    await state.release(Release(g, "d", "a.1", tokens_used=20))
    assert await state.admit(req(g, "b", c, tokens=60)) == Admitted(0)
    assert isinstance(await state.admit(req(g, "c", c, tokens=30)), Waiting)


async def test_failed_attempt_refunds_tokens(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", tpm=100)
    await state.admit(req(g, "a", c, tokens=90))
    await state.release(Release(g, "d", "a.1", outcome="fail", allowed_fails=5))
    assert await state.admit(req(g, "b", c, tokens=90)) == Admitted(0)


async def test_request_larger_than_a_deployments_tpm_goes_where_it_fits(backend) -> None:
    state, _ = backend
    g = group()
    small, large = Candidate("small", tpm=10), Candidate("large", tpm=1000)
    assert await state.admit(req(g, "big", small, large, tokens=500)) == Admitted(1)
    waiting = await state.admit(req(g, "big2", small, tokens=500))  # fits nowhere here
    assert isinstance(waiting, Waiting) and waiting.retry_in is None


async def test_cooldown_after_allowed_fails(backend) -> None:
    state, _ = backend
    g = group()
    a, b = Candidate("a"), Candidate("b")
    for i in range(2):
        assert await state.release(Release(g, "a", f"s{i}", outcome="fail", allowed_fails=3,
                                           cooldown=30)) == 0
    assert await state.release(Release(g, "a", "s3", outcome="fail", allowed_fails=3,
                                       cooldown=30)) == pytest.approx(30)
    assert await state.admit(req(g, "r", a, b)) == Admitted(1)
    w = await state.admit(req(g, "r2", a))
    assert isinstance(w, Waiting) and w.retry_in is not None and 29 < w.retry_in <= 30


async def test_fatal_and_demanded_cooldowns(backend) -> None:
    state, _ = backend
    g = group()
    assert await state.release(Release(g, "a", "s", outcome="fatal", cooldown=7)) == 7
    assert await state.release(
        Release(g, "b", "s", outcome="fail", demanded_cooldown=0.2, allowed_fails=99)
    ) == pytest.approx(0.2)
    assert isinstance(await state.admit(req(g, "r", Candidate("b"))), Waiting)
    await state.cancel(g, "r")
    await asyncio.sleep(0.3)
    assert await state.admit(req(g, "r2", Candidate("b"))) == Admitted(0)


async def test_a_refusal_says_when_capacity_returns(backend) -> None:
    """With nobody in line a refused request (waiting off) may come back when capacity does:
    here when the cooldown ends, not when the minute's admission leaves the window."""
    state, _ = backend
    g, c = group(), Candidate("d")
    assert await state.admit(req(g, "a", c)) == Admitted(0)
    assert await state.release(Release(g, "d", "a.1", outcome="fatal", cooldown=7)) == 7
    refused = await state.admit(req(g, "b", c, max_waiting=0))
    assert isinstance(refused, Full) and refused.depth == 0
    assert refused.retry_in is not None and 6 < refused.retry_in <= 7


async def test_full_line_sheds_with_retry_after(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", rpm=2)
    await state.admit(req(g, "a", c))
    await state.admit(req(g, "b", c))
    assert isinstance(await state.admit(req(g, "w1", c, max_waiting=2)), Waiting)
    assert isinstance(await state.admit(req(g, "w2", c, max_waiting=2)), Waiting)
    full = await state.admit(req(g, "w3", c, max_waiting=2))
    assert isinstance(full, Full) and full.depth == 2
    # Two admissions in the last minute: three in line drain in about 90 s.
    assert full.retry_in == pytest.approx(90, abs=1)
    never = await state.admit(req(g, "now", c, max_waiting=0))
    assert isinstance(never, Full)


async def test_max_waiting_per_priority(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    assert isinstance(await state.admit(req(g, "a", c, priority=7, max_waiting_priority=1)),
                      Waiting)
    assert isinstance(await state.admit(req(g, "b", c, priority=7, max_waiting_priority=1)), Full)
    assert isinstance(await state.admit(req(g, "c", c, priority=3, max_waiting_priority=1)),
                      Waiting)


async def test_least_busy_and_usage_orders(backend) -> None:
    state, _ = backend
    g = group()
    a, b = Candidate("a"), Candidate("b")
    assert await state.admit(req(g, "1", a, b, order="least-busy")) == Admitted(0)
    assert await state.admit(req(g, "2", a, b, order="least-busy")) == Admitted(1)
    assert await state.admit(req(g, "3", a, b, order="least-busy")) == Admitted(0)
    g2 = group()
    assert await state.admit(req(g2, "x", a, b, order="usage", tokens=50)) == Admitted(0)
    assert await state.admit(req(g2, "y", a, b, order="usage", tokens=10)) == Admitted(1)
    assert await state.admit(req(g2, "z", a, b, order="usage", tokens=10)) == Admitted(1)


async def test_latency_order_prefers_faster(backend) -> None:
    state, _ = backend
    g = group()
    fast, slow = Candidate("fast"), Candidate("slow")
    await state.release(Release(g, "fast", "f", latency_ms=10))
    await state.release(Release(g, "slow", "s", latency_ms=500))
    for i in range(5):
        r = await state.admit(req(g, f"r{i}", slow, fast, order="latency", rnd=0.99))
        assert r == Admitted(1)


async def test_line_status_counts_per_priority(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    for rid, p in [("a", 0), ("b", 0), ("c", 4)]:
        await state.admit(req(g, rid, c, priority=p))
    await asyncio.sleep(0.05)
    depth = await state.line(g)
    assert [(d.priority, d.count) for d in depth] == [(0, 2), (4, 1)]
    assert all(d.oldest_wait >= 0.04 for d in depth)


async def test_line_status_leaves_out_expired_waiters_and_times_each_head(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c, lease=5))
    await state.admit(req(g, "ghost-head", c, priority=2, lease=0.1))  # its instance died
    await state.admit(req(g, "early", c, priority=2, lease=5))
    await asyncio.sleep(0.15)
    for rid in ("late", "ghost"):
        await state.admit(req(g, rid, c, priority=2, lease=5 if rid == "late" else 0.1))
    await state.admit(req(g, "other", c, priority=7, lease=5))
    await asyncio.sleep(0.12)  # the second ghost's lease runs out too
    depth = await state.line(g)
    assert [(d.priority, d.count) for d in depth] == [(2, 2), (7, 1)]
    # Priority 2's head is now `early` (the dead head is not counted), waiting ~0.27 s.
    assert depth[0].oldest_wait >= 0.25 and depth[1].oldest_wait < 0.25


async def test_new_head_is_woken_when_a_dead_head_is_cleared(backend) -> None:
    state, wakes = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c, lease=5))
    await state.admit(req(g, "ghost", c, lease=0.15))
    await state.admit(req(g, "next", c, lease=5))
    await state.admit(req(g, "last", c, lease=5))
    await asyncio.sleep(0.25)
    # "last" asks again and clears the ghost on the way: "next" is now the head and hears it.
    assert isinstance(await state.admit(req(g, "last", c, lease=5)), Waiting)
    await wakes.wait_for("next")


@pytest.mark.parametrize("priority", [-(2**20 - 1), -1, 0, 23_285, 30_000, 2**20 - 1])
async def test_any_priority_in_range_is_admitted_when_capacity_returns(backend, priority
                                                                       ) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    assert await state.admit(req(g, "busy", c)) == Admitted(0)
    waiting = await state.admit(req(g, "w", c, priority=priority))
    assert isinstance(waiting, Waiting) and waiting.position == 0
    await state.release(Release(g, "d", "busy.1"))
    assert await state.admit(req(g, "w", c, priority=priority)) == Admitted(0)


async def test_extreme_priorities_keep_their_order(backend) -> None:
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    top, low = 2**20 - 1, -(2**20 - 1)
    for rid, prio in (("a", top), ("b", top - 1), ("c", low + 1), ("d", low), ("e", top)):
        assert isinstance(await state.admit(req(g, rid, c, priority=prio)), Waiting)
    positions = {rid: (await state.admit(req(g, rid, c, priority=prio))).position
                 for rid, prio in (("a", top), ("b", top - 1), ("c", low + 1), ("d", low),
                                   ("e", top))}
    assert positions == {"d": 0, "c": 1, "b": 2, "a": 3, "e": 4}
    assert [d.priority for d in await state.line(g)] == [low, low + 1, top - 1, top]


async def test_usage_returns_to_zero_after_every_kind_of_release(backend) -> None:
    state, _ = backend
    g = group()
    c = Candidate("d", rpm=100, tpm=1000, max_parallel=5)
    for i in range(4):
        assert await state.admit(req(g, f"r{i}", c, tokens=40)) == Admitted(0)
    (use,) = await state.usage(g, ["d"])
    assert (use.requests, use.tokens, use.in_flight) == (4, 160, 4)
    await state.release(Release(g, "d", "r0.1", tokens_used=25))  # real usage
    await state.release(Release(g, "d", "r1.1", outcome="fail", allowed_fails=9))  # refund
    await state.release(Release(g, "d", "r2.1", outcome="fatal", cooldown=0.0))  # refund
    await state.release(Release(g, "d", "r3.1", outcome="none", tokens_used=0))  # refund
    (use,) = await state.usage(g, ["d"])
    assert (use.requests, use.tokens, use.in_flight, use.cooldown) == (4, 25, 0, 0.0)
    assert await state.line(g) == []


async def test_usage_shows_cooldown_left(backend) -> None:
    state, _ = backend
    g = group()
    await state.admit(req(g, "a", Candidate("d")))
    await state.release(Release(g, "d", "a.1", outcome="fatal", cooldown=30))
    (use, other) = await state.usage(g, ["d", "unseen"])
    assert 29 < use.cooldown <= 30 and other.cooldown == 0.0 and other.requests == 0


@pytest.mark.parametrize("priority", [30_000, 2**20 - 1, -(2**20 - 1)])
async def test_waiters_at_large_priorities_are_served_in_arrival_order(backend, priority
                                                                       ) -> None:
    # Lua prints numbers with "%.14g": a rounded-up score made a request count itself as
    # ahead of itself (it then waited forever); rounded-down ones jumped the line.
    state, _ = backend
    g, c = group(), Candidate("d", max_parallel=1)
    await state.admit(req(g, "busy", c))
    arrivals = ["w9", "w8", "w7", "w6", "w5", "w4", "w3", "w2", "w1"]  # names against arrival
    for rid in arrivals:
        await state.admit(req(g, rid, c, priority=priority))
    holder = "busy"
    for rid in arrivals:
        await state.release(Release(g, "d", holder + ".1"))
        for other in arrivals[arrivals.index(rid) + 1:]:
            assert isinstance(await state.admit(req(g, other, c, priority=priority)), Waiting)
        assert await state.admit(req(g, rid, c, priority=priority)) == Admitted(0), rid
        holder = rid
