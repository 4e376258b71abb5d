"""Capacity reserved per tier, the aging of waiters, and the per-tenant shares, on every backend
(in process, Redis, Redis Cluster): the rules of lua/tiers.lua and lua/fair_status.lua."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from router.state.base import AdmitRequest, Admitted, Candidate, Release, Waiting, tier_slot

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



# Shares held per deployment: each deployment's rpm, tpm and parallel slots.
HELD = (("prod", 0.8), ("dev", 0.2), ("default", 0.0))
HALF = (("prod", 0.5), ("dev", 0.5), ("default", 0.0))


def held(g: str, rid: str, tier: str, candidates: list[Candidate],
         tiers: tuple[tuple[str, float], ...] = HELD, tokens: int = 1,
         lease: float = 5.0, retry: bool = False) -> AdmitRequest:
    """A request of `tier` whose slot carries its tier, as the engine names it."""
    return AdmitRequest(group=g, request_id=rid, slot_id=tier_slot(tier, rid + ".1"),
                        priority=0, tokens=tokens, candidates=candidates, tiers=tiers,
                        tier=[name for name, _ in tiers].index(tier), lease=lease,
                        retry=retry)


def end(g: str, r: AdmitRequest, at: str = "d", used: int = -1) -> Release:
    return Release(g, at, r.slot_id, tokens_used=used)


async def ask_all(state, waiting: dict[str, AdmitRequest]) -> tuple[str, int] | None:
    """Ask every waiter once (in the order given): the one admitted, if any, and where."""
    served = []
    for rid, r in list(waiting.items()):
        result = await state.admit(r)
        if isinstance(result, Admitted):
            served.append((rid, result.index))
            del waiting[rid]
        else:
            assert isinstance(result, Waiting)
    assert len(served) <= 1, served
    return served[0] if served else None


async def test_a_tier_is_lent_idle_slots_and_keeps_its_share_of_them(backend) -> None:
    state, _ = backend
    g = group()
    ten = [Candidate("d", max_parallel=10)]
    running: dict[str, AdmitRequest] = {}
    for i in range(10):  # prod is idle: dev may use all ten slots (lent)
        running[f"d{i}"] = held(g, f"d{i}", "dev", ten)
        assert await state.admit(running[f"d{i}"]) == Admitted(0)
    waiting = {f"d{i}": held(g, f"d{i}", "dev", ten) for i in range(10, 20)}
    waiting |= {f"p{i}": held(g, f"p{i}", "prod", ten) for i in range(12)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)

    def count(tier: str) -> int:
        return sum(r.slot_id.startswith(tier + "|") for r in running.values())

    async def free(rid: str) -> str:
        await state.release(end(g, running.pop(rid)))
        served = await ask_all(state, waiting)
        assert served is not None
        running[served[0]] = held(g, served[0], "dev" if served[0][0] == "d" else "prod", ten)
        return served[0]

    # Both backlogged: as dev's slots free, prod takes them up to its 8.
    for i in range(8):
        assert (await free(f"d{i}")).startswith("p"), (i, sorted(running))
    assert (count("prod"), count("dev")) == (8, 2)
    # Dev keeps its 2: the slot it frees comes back to it, prod's goes to prod.
    assert (await free("d8")).startswith("d")
    assert (await free("p0")).startswith("p")
    assert (await free("d9")).startswith("d")
    assert (count("prod"), count("dev")) == (8, 2)
    assert [u.in_flight for u in await state.usage(g, ["d"])] == [10]


async def test_a_tier_is_held_its_share_of_the_rpm_window(backend) -> None:
    state, _ = backend
    rpm = [Candidate("d", rpm=10, max_parallel=1)]  # one slot, so a line forms behind it

    async def alone(g: str, n: int) -> AdmitRequest:
        """n prod requests one after another (each released but the last); dev is idle."""
        for i in range(n):
            r = held(g, f"p{i}", "prod", rpm, HALF)
            assert await state.admit(r) == Admitted(0), i
            if i < n - 1:
                await state.release(end(g, r))
        return r

    # Lent: with dev idle, prod takes all ten of the window.
    g = group()
    last = await alone(g, 10)
    await state.release(end(g, last))
    assert isinstance(await state.admit(held(g, "p10", "prod", rpm, HALF)), Waiting)

    # Held: prod took 6 while dev was idle; once dev has demand the 4 left are dev's.
    g = group()
    holder = await alone(g, 6)
    waiting = {f"p{i}": held(g, f"p{i}", "prod", rpm, HALF) for i in range(6, 12)}
    waiting |= {f"d{i}": held(g, f"d{i}", "dev", rpm, HALF) for i in range(6)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    for _ in range(4):
        await state.release(end(g, holder))
        served = await ask_all(state, waiting)
        assert served is not None and served[0].startswith("d"), served
        holder = held(g, served[0], "dev", rpm, HALF)
    await state.release(end(g, holder))
    assert await ask_all(state, waiting) is None  # the window is full

    # Both backlogged from the start: five each.
    g = group()
    holder = held(g, "h", "prod", rpm, HALF)
    assert await state.admit(holder) == Admitted(0)
    waiting = {f"p{i}": held(g, f"p{i}", "prod", rpm, HALF) for i in range(8)}
    waiting |= {f"d{i}": held(g, f"d{i}", "dev", rpm, HALF) for i in range(8)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    order = ["h"]
    for _ in range(9):
        await state.release(end(g, holder))
        served = await ask_all(state, waiting)
        assert served is not None
        order.append(served[0])
        holder = held(g, served[0], "dev" if served[0][0] == "d" else "prod", rpm, HALF)
    assert sum(rid.startswith("d") for rid in order) == 5, order


async def test_a_tier_is_held_its_share_of_the_tpm_window(backend) -> None:
    state, _ = backend
    g = group()
    tpm = [Candidate("d", tpm=100)]
    assert await state.admit(held(g, "p0", "prod", tpm, HALF, tokens=60)) == Admitted(0)
    dev = held(g, "d0", "dev", tpm, HALF, tokens=50)  # more than is free: it waits
    assert isinstance(await state.admit(dev), Waiting)
    # Prod is past its 50: the 40 left are dev's (it is owed 50), even for a retry of prod,
    # which skips the order of the line but not what is held.
    retry = held(g, "p1", "prod", tpm, HALF, tokens=10, retry=True)
    assert isinstance(await state.admit(retry), Waiting)
    # Prod's call really used 20 tokens: dev's 50 fit, and then prod's 10.
    await state.release(end(g, held(g, "p0", "prod", tpm, HALF), used=20))
    assert await state.admit(dev) == Admitted(0)
    assert await state.admit(retry) == Admitted(0)
    assert [u.tokens for u in await state.usage(g, ["d"])] == [80]


async def test_each_deployment_holds_the_share_on_its_own(backend) -> None:
    state, _ = backend
    g = group()
    pair = [Candidate("a", max_parallel=10), Candidate("b", max_parallel=10)]
    where: dict[str, str] = {}
    for i in range(20):  # dev fills both while prod is idle
        result = await state.admit(held(g, f"d{i}", "dev", pair))
        assert isinstance(result, Admitted)
        where[f"d{i}"] = "ab"[result.index]
    assert sorted(where.values()) == ["a"] * 10 + ["b"] * 10
    waiting = {f"d{i}": held(g, f"d{i}", "dev", pair) for i in range(20, 30)}
    waiting |= {f"p{i}": held(g, f"p{i}", "prod", pair) for i in range(20)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    dev_on = {d: [rid for rid, at in where.items() if at == d] for d in "ab"}

    async def free(rid: str) -> tuple[str, str]:
        tier = "dev" if rid[0] == "d" else "prod"
        await state.release(end(g, held(g, rid, tier, pair), at=where.pop(rid)))
        served = await ask_all(state, waiting)
        assert served is not None
        where[served[0]] = "ab"[served[1]]
        return served[0], "ab"[served[1]]

    # Only a's dev slots free: prod climbs to 8 on a, though b holds none of its share...
    for _ in range(8):
        rid, at = await free(dev_on["a"].pop(0))
        assert rid.startswith("p") and at == "a", (rid, at)
    # ...and a keeps 2 for dev, whatever the group holds as a whole.
    rid, at = await free(dev_on["a"].pop(0))
    assert rid.startswith("d") and at == "a", (rid, at)
    for _ in range(8):  # then b's free: the same on b
        rid, at = await free(dev_on["b"].pop(0))
        assert rid.startswith("p") and at == "b", (rid, at)
    rid, at = await free(dev_on["b"].pop(0))
    assert rid.startswith("d") and at == "b", (rid, at)
    for d in "ab":
        tiers = [rid[0] for rid, at in where.items() if at == d]
        assert (tiers.count("p"), tiers.count("d")) == (8, 2), d


async def test_per_tier_use_returns_to_nothing_however_slots_end(backend) -> None:
    state, _ = backend
    g = group()
    dep = [Candidate("d", rpm=1000, tpm=100_000, max_parallel=10)]
    # Slots end every way: released with real usage, failed (refunded), undone (tokens 0),
    # lost to a lease that ran out (an instance crashed; one released late, as LeaseLost
    # does), and a waiter cancelled.
    crashed = [held(g, f"c{i}", "dev", dep, tokens=500, lease=0.2) for i in range(3)]
    for r in crashed:
        assert await state.admit(r) == Admitted(0)
    done = [held(g, f"e{i}", "dev", dep, tokens=300) for i in range(3)]
    for r in done:
        assert await state.admit(r) == Admitted(0)
    prod = [held(g, f"q{i}", "prod", dep, tokens=100) for i in range(4)]
    for r in prod:
        assert await state.admit(r) == Admitted(0)
    gone = held(g, "w", "dev", dep)
    assert isinstance(await state.admit(gone), Waiting)  # all ten slots are taken
    assert await state.cancel(g, "w")
    await state.release(Release(g, "d", done[0].slot_id, tokens_used=120))
    await state.release(Release(g, "d", done[1].slot_id, tokens_used=50, outcome="fail"))
    await state.release(Release(g, "d", done[2].slot_id, tokens_used=0, outcome="none"))
    for r in prod:
        await state.release(end(g, r, used=90))
    await asyncio.sleep(0.3)  # the crashed instance's leases run out
    await state.release(Release(g, "d", crashed[0].slot_id, tokens_used=0, outcome="none"))
    assert [u.in_flight for u in await state.usage(g, ["d"])] == [0]

    # The holds work as on a fresh deployment: dev is lent all ten, then keeps exactly 2.
    running = {f"d{i}": held(g, f"d{i}", "dev", dep) for i in range(10)}
    for r in running.values():
        assert await state.admit(r) == Admitted(0)
    waiting = {f"d{i}": held(g, f"d{i}", "dev", dep) for i in range(10, 14)}
    waiting |= {f"p{i}": held(g, f"p{i}", "prod", dep) for i in range(10)}
    for r in waiting.values():
        assert isinstance(await state.admit(r), Waiting)
    order = []
    for i in range(9):
        await state.release(end(g, running.pop(f"d{i}")))
        served = await ask_all(state, waiting)
        assert served is not None
        order.append(served[0][0])
    assert order == ["p"] * 8 + ["d"], order


async def test_the_overview_shows_each_tiers_waiters_and_use(backend) -> None:
    """What the dashboard and /queue/status show per tier: live waiters, slots in flight,
    requests and tokens in the window, summed over the group's deployments; a waiter whose
    lease ran out, or who left, is not counted."""
    state, _ = backend
    g = group()
    deps = [Candidate("a", max_parallel=2), Candidate("b", max_parallel=2)]
    names = [name for name, _ in HELD]
    for i in range(3):
        assert isinstance(await state.admit(held(g, f"p{i}", "prod", deps, tokens=100)),
                          Admitted)
    running = held(g, "d0", "dev", deps, tokens=7)
    admitted = await state.admit(running)
    assert isinstance(admitted, Admitted)
    for rid, tier, lease in (("p9", "prod", 5.0), ("d8", "dev", 5.0), ("d9", "dev", 0.2),
                             ("d7", "dev", 5.0)):
        assert isinstance(await state.admit(held(g, rid, tier, deps, lease=lease)), Waiting)
    assert await state.cancel(g, "d7")
    await asyncio.sleep(0.3)  # d9's lease runs out; it has not been swept from the line

    view = await state.overview(g, ["a", "b"], names)
    use = {t.tier: (t.waiting, t.in_flight, t.requests, t.tokens) for t in view.tiers}
    assert use == {"prod": (1, 3, 3, 300), "dev": (1, 1, 1, 7), "default": (0, 0, 0, 0)}
    assert [t.tier for t in view.tiers] == names
    assert (await state.overview(g, ["a", "b"])).tiers == ()

    # A release with its real usage moves the tier's tokens; the request stays in the window.
    await state.release(Release(g, "ab"[admitted.index], running.slot_id, tokens_used=3))
    view = await state.overview(g, ["a", "b"], names)
    use = {t.tier: (t.waiting, t.in_flight, t.requests, t.tokens) for t in view.tiers}
    assert use["dev"] == (1, 0, 1, 3), use
