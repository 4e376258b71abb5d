"""What the Redis backend leaves in Redis: one slot per group, a TTL on every key."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.cluster import key_slot

from router.state.base import (
    AdmitRequest,
    Admitted,
    Candidate,
    Refused,
    Release,
    TenantAsk,
    TenantEnd,
    TenantEntity,
    tier_slot,
)
from router.state.keys import GroupKeys, TenantKeys
from router.state.redis_store import RedisState


@pytest.mark.asyncio(loop_scope="function")
async def test_every_key_has_a_ttl_and_one_slot_per_group(redis_server) -> None:
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group = f"keys-{uuid.uuid4().hex[:6]}"
    c = Candidate("d", rpm=1, tpm=1000, max_parallel=1)

    def req(rid: str) -> AdmitRequest:
        return AdmitRequest(group=group, request_id=rid, slot_id=rid + ".1", priority=0,
                            tokens=10, candidates=[c], lease=5)

    await state.admit(req("a"))
    await state.admit(req("b"))  # waits
    await state.release(Release(group, "d", "a.1", tokens_used=5, outcome="fail",
                                allowed_fails=1, cooldown=5))
    await state.renew(group, ["b"], [], 5)
    await state.close()

    r = redis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in r.scan_iter(match=f"{GroupKeys.of(group).base}*")]
    assert len(keys) >= 6
    assert {key_slot(k.encode()) for k in keys} == {key_slot(keys[0].encode())}
    assert all(r.pttl(k) > 0 for k in keys), {k: r.pttl(k) for k in keys}
    r.close()


def test_group_names_with_braces_keep_a_valid_hash_tag() -> None:
    odd = GroupKeys.of("we{ird}")
    assert odd.line.count("{") == 1 and odd.line.count("}") == 1
    assert key_slot(odd.line.encode()) == key_slot(odd.deployment("x").rpm.encode())


@pytest.mark.asyncio(loop_scope="function")
async def test_per_tier_counters_follow_the_windows(redis_server) -> None:
    """The tok hash's per-tier counters (lua/capacity.lua) equal what the rpm and tpm windows
    hold of each tier, through admissions, releases and entries leaving the window."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group = f"tiers-{uuid.uuid4().hex[:6]}"
    tiers = (("prod", 0.8), ("dev", 0.2), ("default", 0.0))
    c = Candidate("d", rpm=100, tpm=100_000, max_parallel=10)

    def req(rid: str, tier: str, tokens: int) -> AdmitRequest:
        return AdmitRequest(group=group, request_id=rid, slot_id=tier_slot(tier, rid + ".1"),
                            priority=0, tokens=tokens, candidates=[c], lease=5, tiers=tiers,
                            tier=[t for t, _ in tiers].index(tier))

    d = GroupKeys.of(group).deployment("d")
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)

    def check() -> dict[str, tuple[int, int]]:
        tok = r.hgetall(d.tok)
        seen = {}
        for tier in ("prod", "dev"):
            mine = [m for m in r.zrange(d.rpm, 0, -1) if m.startswith(tier + "|")]
            assert r.zrange(d.tpm, 0, -1) == r.zrange(d.rpm, 0, -1)
            counted = (int(tok.get(f"=r:{tier}", 0)), int(tok.get(f"=t:{tier}", 0)))
            assert counted == (len(mine), sum(int(tok[m]) for m in mine)), (tier, tok)
            seen[tier] = counted
        return seen

    for i, (tier, tokens) in enumerate([("prod", 100), ("dev", 40), ("prod", 70), ("dev", 5)]):
        assert isinstance(await state.admit(req(f"r{i}", tier, tokens)), Admitted)
    assert check() == {"prod": (2, 170), "dev": (2, 45)}
    await state.release(Release(group, "d", tier_slot("prod", "r0.1"), tokens_used=30))
    await state.release(Release(group, "d", tier_slot("dev", "r1.1"), tokens_used=9,
                                outcome="fail"))  # a failure refunds everything
    assert check() == {"prod": (2, 100), "dev": (2, 5)}
    # Two entries leave the window (aged here by hand): the next admission retires them.
    for m in (tier_slot("prod", "r0.1"), tier_slot("dev", "r3.1")):
        for window in (d.rpm, d.tpm):
            r.zadd(window, {m: 1})
    assert isinstance(await state.admit(req("r4", "dev", 11)), Admitted)
    assert check() == {"prod": (1, 70), "dev": (2, 11)}
    assert all(r.pttl(k) > 0 for k in (d.rpm, d.tpm, d.tok, d.run))
    await state.close()
    r.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_tenants_windows_outlive_their_entries_and_its_spend_never_expires(
        redis_server) -> None:
    """The windows' TTLs are set again only every 30 s: whenever they are, they reach past
    the window of any entry added until the next time."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tkeys-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    key = TenantEntity(tag, rpm=100, tpm=10**6, parallel=10, model_rpm=50, budget=10**9)
    ask = TenantAsk(tag, (key,), group, cost=10)
    for rid in ("a", "b", "c"):
        reply = await state.admit(AdmitRequest(
            group=group, request_id=rid, slot_id=rid + ".1", priority=0, tokens=10,
            candidates=[Candidate("d")], lease=5, tenant=ask))
        assert isinstance(reply, Admitted)
    await state.close()

    r = redis.Redis.from_url(redis_server.url)
    win, tok, run, spend, mwin, mtok = TenantKeys.of(tag).entity(tag, group)
    assert r.zcard(win) == 3 and r.zcard(mwin) == 3
    for k in (win, tok, mwin, mtok):
        assert 90_000 < r.pttl(k) <= 120_000, k
    assert r.pttl(run) > 90_000
    assert r.pttl(spend) == -1  # data, not state that rebuilds itself
    r.close()


async def _admit_for_tenant(state: RedisState, ask: TenantAsk, rid: str, tokens: int = 1
                            ) -> object:
    """A request's first admission with its tenant's checks, on a deployment without limits."""
    return await state.admit(AdmitRequest(
        group=ask.group, request_id=rid, slot_id=rid + ".1", priority=0, tokens=tokens,
        candidates=[Candidate("d")], lease=30, tenant=ask))


@pytest.mark.asyncio(loop_scope="function")
async def test_a_tenants_window_counts_its_entries_as_they_come_and_go(redis_server) -> None:
    """The window keeps its request count beside its token total: both follow admissions,
    refusals and entries ageing out, a window written before the count existed is counted
    from its entries, and a lease that ran out no longer holds a parallel slot."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tcount-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    key = TenantEntity(tag, rpm=3, tpm=10**6, parallel=5)
    ask = TenantAsk(tag, (key,), group, cost=0)
    r = redis.Redis.from_url(redis_server.url)
    win, tok, run, _spend, _mwin, _mtok = TenantKeys.of(tag).entity(tag, group)

    async def admit(rid: str) -> object:
        return await _admit_for_tenant(state, ask, rid, tokens=7)

    def counted() -> tuple[int, int]:
        return int(r.hget(tok, "=n") or -1), int(r.hget(tok, "=total") or -1)

    for rid in ("a", "b", "c"):
        assert isinstance(await admit(rid), Admitted)
    assert isinstance(await admit("d"), Refused)
    assert counted() == (3, 21) and r.zcard(win) == 3

    # Two entries age out of the 60 s window: the next admission prunes them.
    for rid in ("a", "b"):
        r.zadd(win, {rid: int(r.zscore(win, rid)) - 61_000})
    assert isinstance(await admit("e"), Admitted)
    assert counted() == (2, 14) and r.zcard(win) == 2

    # A window from before the count: counted from its entries, then kept.
    r.hdel(tok, "=n")
    assert isinstance(await admit("f"), Admitted)
    assert counted() == (3, 21) == (r.zcard(win), 21)
    assert isinstance(await admit("g"), Refused)

    # Pruned by a refused request: the totals are written all the same.
    r.zadd(win, {"c": int(r.zscore(win, "c")) - 61_000})
    r.hset(tok, "=x", 0)  # and the TTL refresh is due, which prunes `run` as well
    key_par = TenantEntity(tag, rpm=3, tpm=10**6, parallel=2)
    ask = TenantAsk(tag, (key_par,), group, cost=0)
    assert isinstance(await admit("h"), Refused)  # 4 leases live, 2 allowed
    assert counted() == (2, 14) and r.zcard(win) == 2

    # Leases that ran out (their instance stopped renewing) hold no slot.
    for rid in r.zrange(run, 0, -1):
        r.zadd(run, {rid: 1})
    assert isinstance(await admit("i"), Admitted)
    assert r.zcard(run) == 1  # the refresh was due: the dead leases left
    await state.close()
    r.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_dead_instances_budget_reservations_go_back(redis_server) -> None:
    """A request whose instance stopped renewing its lease will never be released: once its
    lease has run out, the cost it reserved goes back to the budget (at the next TTL refresh
    of an admission, or at the next renewal of the tenant's leases), and a request that turns
    out to be alive after all is charged its cost at its release, with nothing left reserved."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tdead-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    key = TenantEntity(tag, budget=1000)
    r = redis.Redis.from_url(redis_server.url)
    _win, tok, run, spend, _mwin, _mtok = TenantKeys.of(tag).entity(tag, group)

    async def admit(rid: str, cost: int) -> object:
        return await _admit_for_tenant(state, TenantAsk(tag, (key,), group, cost), rid)

    def reserved() -> int:
        return int(r.hget(spend, "r") or 0)

    assert isinstance(await admit("a", 600), Admitted)
    assert isinstance(await admit("b", 300), Admitted)
    assert reserved() == 900
    assert isinstance(await admit("c", 200), Refused)  # 900 + 200 > 1000

    r.zadd(run, {"a": 1})  # a's instance died: its lease ran out long ago
    assert isinstance(await admit("c", 200), Refused)  # returned only at the refresh...
    r.hset(tok, "=x", 0)
    assert isinstance(await admit("c", 200), Admitted)  # ...which this admission runs first
    assert reserved() == 500 and r.hget(spend, "r:a") is None and r.zscore(run, "a") is None

    r.zadd(run, {"b": 1})  # b's too; the tenant's other instance renews its leases
    await state.tenant_renew(TenantAsk(tag, (key,), group), ["c"], 30)
    assert reserved() == 200 and r.zscore(run, "c") is not None

    # `a` was alive after all (a frozen instance that thawed): it pays, nothing stays reserved.
    await state.tenant_release(TenantEnd(TenantAsk(tag, (key,), group, 600), "a", 1, 600))
    assert reserved() == 200 and int(r.hget(spend, "s")) == 600
    await state.close()
    r.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_tenants_window_is_pruned_when_due_or_when_it_would_refuse(redis_server) -> None:
    """Entries that aged out leave the window at most every 100 ms while nothing is refused
    (so a steady stream of requests does not prune one entry per admission), and at once
    when they would refuse a request: only the last 60 s ever refuse one."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tprune-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    ask = TenantAsk(tag, (TenantEntity(tag, rpm=3, tpm=20),), group, cost=0)
    r = redis.Redis.from_url(redis_server.url)
    win, tok, _run, _spend, _mwin, _mtok = TenantKeys.of(tag).entity(tag, group)

    async def admit(rid: str) -> object:
        return await _admit_for_tenant(state, ask, rid, tokens=5)

    def aged(*rids: str) -> None:
        r.zadd(win, {rid: int(r.zscore(win, rid)) - 61_000 for rid in rids})

    def counted() -> tuple[int, int]:
        return int(r.hget(tok, "=n") or -1), int(r.hget(tok, "=total") or -1)

    assert isinstance(await admit("a"), Admitted)
    aged("a")
    r.hset(tok, "=q", r.time()[0] * 1000 + 60_000)  # pruned "just now": none is due
    assert isinstance(await admit("b"), Admitted)
    assert counted() == (2, 10) and r.zscore(win, "a") is not None  # still counted
    r.hset(tok, "=q", 0)  # due
    assert isinstance(await admit("c"), Admitted)
    assert counted() == (2, 10) and r.zscore(win, "a") is None

    # Not due, but the aged entries would refuse: by requests (3 of 3), then by tokens.
    aged("b", "c")
    r.hset(tok, "=q", r.time()[0] * 1000 + 60_000)
    for rid in ("d", "e", "f"):
        assert isinstance(await admit(rid), Admitted)
    assert counted() == (3, 15)
    refused = await admit("g")
    assert isinstance(refused, Refused) and refused.limit == "rpm"
    aged("d", "e", "f")
    r.hset(tok, "=q", r.time()[0] * 1000 + 60_000)
    assert isinstance(await admit("g"), Admitted) and counted() == (1, 5)
    assert isinstance(await admit("h"), Admitted)
    r.hset(tok, mapping={"h": 12, "=total": 17})  # h's tokens as its release reconciled them
    aged("g")
    r.hset(tok, "=q", r.time()[0] * 1000 + 60_000)
    assert isinstance(await admit("i"), Admitted)  # 17 + 5 > 20 only with g, which leaves
    assert counted() == (2, 17)
    refused = await admit("j")  # 17 + 5 > 20 in the last 60 s
    assert isinstance(refused, Refused) and refused.limit == "tpm"
    await state.close()
    r.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_tenants_requests_in_flight_are_counted_beside_its_window(redis_server) -> None:
    """The parallel limit reads a count kept with every entry and exit (no count of the
    leases per admission): releases, a line that was full, expired leases and a hash from
    before the count all leave it right."""
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tpar-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    key = TenantEntity(tag, parallel=2)
    ask = TenantAsk(tag, (key,), group, cost=0)
    r = redis.Redis.from_url(redis_server.url)
    _win, tok, run, _spend, _mwin, _mtok = TenantKeys.of(tag).entity(tag, group)

    async def admit(rid: str) -> object:
        return await _admit_for_tenant(state, ask, rid)

    def in_flight() -> int:
        return int(r.hget(tok, "=p") or -1)

    assert isinstance(await admit("a"), Admitted) and isinstance(await admit("b"), Admitted)
    assert in_flight() == 2
    assert isinstance(await admit("c"), Refused)
    await state.tenant_release(TenantEnd(ask, "a", 1, 0))
    assert in_flight() == 1
    assert isinstance(await admit("c"), Admitted) and in_flight() == 2
    await state.tenant_release(TenantEnd(ask, "c", 1, 0, undo=True))
    assert in_flight() == 1

    r.zadd(run, {"b": 1})  # b's instance died: its lease ran out
    r.hset(tok, "=p", 2)  # and the count still holds it (nothing pruned it yet)
    assert isinstance(await admit("d"), Admitted)  # the count would refuse: b leaves first
    assert in_flight() == 1 and r.zscore(run, "b") is None

    r.hdel(tok, "=p")  # a hash from before the count: counted from `run`
    assert isinstance(await admit("e"), Admitted) and in_flight() == 2
    assert isinstance(await admit("f"), Refused)
    await state.close()
    r.close()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_call_that_reserved_and_cost_nothing_leaves_the_spend_alone(redis_server) -> None:
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group, tag = f"tfree-{uuid.uuid4().hex[:6]}", f"key:{uuid.uuid4().hex}"
    key = TenantEntity(tag, budget=1000, soft_budget=0)
    r = redis.Redis.from_url(redis_server.url)
    spend = TenantKeys.of(tag).entity(tag, group)[3]

    async def call(rid: str, reserved: int, cost: int) -> tuple[int, ...]:
        ask = TenantAsk(tag, (key,), group, reserved)
        assert isinstance(await _admit_for_tenant(state, ask, rid), Admitted)
        return (await state.tenant_release(TenantEnd(ask, rid, 1, cost))).soft_crossed

    assert await call("a", 0, 0) == ()
    before = r.hgetall(spend)
    assert await call("b", 0, 0) == () and r.hgetall(spend) == before
    assert await call("c", 10, 4) == (0,)  # spending crosses the soft budget (of 0)
    assert int(r.hget(spend, "s")) == 4 and int(r.hget(spend, "r")) == 0
    await state.close()
    r.close()
