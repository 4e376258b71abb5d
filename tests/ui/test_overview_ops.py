"""The dashboard's read operations (`overview`, `seen`) on the in-process and Redis backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from router.state.base import AdmitRequest, Admitted, Candidate, Release, Waiting

pytestmark = pytest.mark.asyncio(loop_scope="function")


def _req(g: str, rid: str, c: Candidate, priority: int = 0, tenant: str = "") -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=priority,
                        tokens=7, candidates=[c], fair_tenant=tenant)


async def test_overview_shows_lanes_tenants_and_deployments(backend) -> None:
    state, _ = backend
    g, c = "g-" + uuid.uuid4().hex[:8], Candidate("d1", max_parallel=1)
    assert await state.admit(_req(g, "run", c, tenant="k:a")) == Admitted(0)
    for rid, prio, tenant in (("w1", 5, "k:a"), ("w2", 5, "t:blue"), ("w3", 0, "t:blue")):
        assert isinstance(await state.admit(_req(g, rid, c, prio, tenant)), Waiting)
    view = await state.overview(g, ["d1", "unused"])
    assert [(d.priority, d.count) for d in view.lines] == [(0, 1), (5, 2)]
    assert view.waiting_by_tenant == {"k:a": 1, "t:blue": 2}
    d1, unused = view.deployments
    assert (d1.deployment_id, d1.requests, d1.tokens, d1.in_flight) == ("d1", 1, 7, 1)
    assert d1.cooldown == 0 and d1.cooldown_reason == "" and d1.latency_ms is None
    assert (unused.requests, unused.in_flight) == (0, 0)

    await state.release(Release(g, "d1", "run.1", tokens_used=3, latency_ms=120.5))
    d1 = (await state.overview(g, ["d1"])).deployments[0]
    assert (d1.in_flight, d1.tokens, d1.latency_ms) == (0, 3, 120.5)


@pytest.mark.parametrize(("release", "reason"), [
    ({"outcome": "fail", "allowed_fails": 1}, "failures"),
    ({"outcome": "fatal"}, "fatal"),
    ({"outcome": "fail", "demanded_cooldown": 9.0}, "retry-after"),
])
async def test_overview_says_why_a_deployment_cools_down(backend, release, reason) -> None:
    state, _ = backend
    g, c = "g-" + uuid.uuid4().hex[:8], Candidate("d1")
    assert await state.admit(_req(g, "a", c)) == Admitted(0)
    assert await state.admit(_req(g, "b", c)) == Admitted(0)
    await state.release(Release(g, "d1", "a.1", outcome="fail", allowed_fails=5))
    assert (await state.overview(g, ["d1"])).deployments[0].failures == 1
    await state.release(Release(g, "d1", "b.1", cooldown=5.0, **release))
    d1 = (await state.overview(g, ["d1"])).deployments[0]
    assert d1.cooldown_reason == reason and 0 < d1.cooldown <= release.get(
        "demanded_cooldown", 5.0)
    assert d1.failures == 0, "a cooldown starts the failure count again"


async def test_overview_counts_the_fleets_attempts_latencies_and_refusals(backend) -> None:
    """Attempts, failures and a latency histogram per deployment, and the group's 429s (line
    full) and 408s (timed out in line), as every instance wrote them into shared state."""
    state, _ = backend
    g, c = "g-" + uuid.uuid4().hex[:8], Candidate("d1", max_parallel=1)
    for i, (outcome, latency) in enumerate([("ok", 0.4), ("ok", 3.0), ("ok", 300.0),
                                             ("fail", 50.0), ("none", 9.0)]):
        assert await state.admit(_req(g, f"a{i}", c)) == Admitted(0)
        await state.release(Release(g, "d1", f"a{i}.1", outcome=outcome, latency_ms=latency))
    assert await state.admit(_req(g, "busy", c)) == Admitted(0)
    assert isinstance(await state.admit(AdmitRequest(
        group=g, request_id="w", slot_id="w.1", priority=0, tokens=1, candidates=[c],
        max_waiting=1)), Waiting)
    full = await state.admit(AdmitRequest(
        group=g, request_id="x", slot_id="x.1", priority=0, tokens=1, candidates=[c],
        max_waiting=1))
    assert type(full).__name__ == "Full"
    assert await state.cancel(g, "w", timed_out=True) is True
    assert await state.cancel(g, "w", timed_out=True) is False  # gone already: not counted
    view = await state.overview(g, ["d1"])
    assert (view.rejected, view.timed_out) == (1, 1)
    (d1,) = view.deployments
    assert (d1.attempts, d1.failed) == (4, 1)  # "none" (never sent) is not an attempt
    buckets = {b: n for b, n in enumerate(d1.latency_buckets) if n}
    assert buckets == {0: 1, 1: 1, 8: 1}  # <1 ms, 2-4 ms, 256-512 ms


async def test_seen_lists_recent_instances(backend) -> None:
    state, _ = backend
    me, other = "i-" + uuid.uuid4().hex[:6], "i-" + uuid.uuid4().hex[:6]
    await state.seen(other, 30.0)
    seen = await state.seen(me, 30.0)
    assert {me, other} <= set(seen) and seen[me] < 1.0 and seen[other] < 1.0
    await asyncio.sleep(0.05)
    recent = await state.seen(me, 0.02)
    assert me in recent and other not in recent, "older than the window: dropped"
