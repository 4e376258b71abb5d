"""Shared state inside one process: the embedded default when no Redis is configured.

The same operations and semantics as the Lua scripts in lua/ (read admit.lua for the rules);
each operation is one synchronous function, so the event loop never interleaves two of them.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from router.state.base import (
    LATENCY_BUCKETS,
    AdmitRequest,
    Admitted,
    Candidate,
    DeploymentUsage,
    DeploymentView,
    Full,
    GroupView,
    LineDepth,
    Refused,
    Release,
    TenantAsk,
    TenantEnd,
    TenantEntity,
    TenantReleased,
    TenantShare,
    TenantUsage,
    TierView,
    Waiting,
    WakeCallback,
    slot_tier,
    top_shares,
)
from router.state.kv import MemoryKV

__all__ = ["MemoryState"]

WINDOW = 60.0
SHIFT = 2**32
FAIR_REBASE = 2**31
PROMOTED = -(2**53)
AGED = -(2**20)
"""The priority /queue/status reports aged waiters at: below any a request may have."""
"""An aged waiter's score: PROMOTED + its arrival (ms), ahead of every priority (lua/tiers.lua)."""


def _now() -> float:
    return time.monotonic()


class _MinuteCounts:
    """Counters of this minute and the last (lua/stats.lua): older minutes are dropped."""

    __slots__ = ("minutes",)

    def __init__(self) -> None:
        self.minutes: dict[int, dict[str, int]] = {}

    def add(self, name: str, now: float) -> None:
        m = int(now // 60)
        if m not in self.minutes:
            self.minutes = {k: v for k, v in self.minutes.items() if k >= m - 1}
            self.minutes[m] = {}
        counts = self.minutes[m]
        counts[name] = counts.get(name, 0) + 1

    def recent(self, name: str, now: float) -> int:
        m = int(now // 60)
        return sum(self.minutes.get(k, {}).get(name, 0) for k in (m, m - 1))


def _latency_bucket(latency_ms: float) -> int:
    if latency_ms < 1:
        return 0
    return min(LATENCY_BUCKETS - 1, int(math.log2(latency_ms)))


@dataclass
class _Deployment:
    # Admissions in time order (the clock is monotonic), so expiry pops from the left: O(1)
    # amortised per request however many requests the window holds.
    rpm: deque[float] = field(default_factory=deque)
    token_log: deque[tuple[float, str]] = field(default_factory=deque)
    tokens: dict[str, int] = field(default_factory=dict)  # slot -> tokens still in the window
    total: int = 0
    run: dict[str, float] = field(default_factory=dict)  # slot -> lease expiry
    fails: list[float] = field(default_factory=list)
    cool_until: float = 0.0
    cool_why: str = ""
    latency: float | None = None
    stats: _MinuteCounts = field(default_factory=_MinuteCounts)
    # Per reservation tier (lua/capacity.lua): requests and tokens in the window. token_log
    # holds the same admissions as rpm, so its expiry retires both.
    tier_requests: dict[str, int] = field(default_factory=dict)
    tier_tokens: dict[str, int] = field(default_factory=dict)

    def prune(self, now: float) -> None:
        edge = now - WINDOW
        while self.rpm and self.rpm[0] <= edge:
            self.rpm.popleft()
        while self.token_log and self.token_log[0][0] <= edge:
            _, slot = self.token_log.popleft()
            n = self.tokens.pop(slot, 0)
            self.total -= n
            tier = slot_tier(slot)
            if tier is not None:
                self.tier_requests[tier] -= 1
                self.tier_tokens[tier] -= n
        if self.run and min(self.run.values()) <= now:
            self.run = {s: t for s, t in self.run.items() if t > now}

    def reserve(self, slot: str, tokens: int, now: float, lease: float) -> None:
        self.rpm.append(now)
        self.token_log.append((now, slot))
        self.tokens[slot] = tokens
        self.total += tokens
        self.run[slot] = now + lease
        tier = slot_tier(slot)
        if tier is not None:
            self.tier_requests[tier] = self.tier_requests.get(tier, 0) + 1
            self.tier_tokens[tier] = self.tier_tokens.get(tier, 0) + tokens

    def reconcile(self, slot: str, used: int) -> None:
        """Real usage replaces an attempt's reservation in the window."""
        if used >= 0 and slot in self.tokens:
            delta = used - self.tokens[slot]
            self.total += delta
            self.tokens[slot] = used
            tier = slot_tier(slot)
            if tier is not None:
                self.tier_tokens[tier] += delta

    def tier_use(self, tier: str) -> tuple[int, int, int]:
        """A tier's requests and tokens in the window, and its slots in flight."""
        return (self.tier_requests.get(tier, 0), self.tier_tokens.get(tier, 0),
                sum(1 for s in self.run if slot_tier(s) == tier))

    def inspect(self, c: Candidate, tokens: int, now: float) -> tuple[bool, float]:
        """Whether it can take `tokens` more now, and when capacity returns (-1: unknown)."""
        self.prune(now)
        ok, back = True, -1.0
        if self.cool_until > now:
            ok, back = False, max(back, self.cool_until)
        if c.rpm and len(self.rpm) >= c.rpm:
            ok, back = False, max(back, self.rpm[0] + WINDOW)
        if c.tpm and self.total + tokens > c.tpm:  # larger than the whole limit: never here
            ok = False
            if tokens <= c.tpm and self.total > 0:
                back = max(back, self.token_log[0][0] + WINDOW)
        if c.max_parallel and len(self.run) >= c.max_parallel:
            ok, back = False, max(back, min(self.run.values()))
        return ok, back


@dataclass
class _Group:
    line: list[tuple[int, str]] = field(default_factory=list)  # sorted (score, request id)
    scores: dict[str, int] = field(default_factory=dict)
    leases: dict[str, float] = field(default_factory=dict)
    expiries: list[tuple[float, str]] = field(default_factory=list)
    arrived: dict[str, float] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    deployments: dict[str, _Deployment] = field(default_factory=dict)
    # Fair share (see lua/fair.lua): the clock, each tenant's finish tag, who waits for whom.
    fair_v: int = 0
    fair_f: dict[str, int] = field(default_factory=dict)
    tenant_of: dict[str, str] = field(default_factory=dict)
    fair_until: float = 0.0
    """The clock starts again at zero once the group has been idle past this."""
    stats: _MinuteCounts = field(default_factory=_MinuteCounts)
    """429s (line full) and 408s (timed out in line), for the dashboard."""
    fair_served_tokens: dict[str, int] = field(default_factory=dict)
    """Weighted tokens served per tenant since the clock last started (for status)."""
    # Aging and reservation tiers (see lua/tiers.lua).
    aging_q: deque[tuple[float, str]] = field(default_factory=deque)
    tier_line: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    tier_v: float = 0.0
    tier_f: dict[str, float] = field(default_factory=dict)
    tier_of: dict[str, str] = field(default_factory=dict)

    def clock(self, now: float) -> None:
        """The fair-share and tier clocks start again once the group has been idle a while
        (in Redis: its wmeta hash expired)."""
        if now > self.fair_until:
            self.fair_v, self.fair_f, self.fair_served_tokens = 0, {}, {}
            self.tier_v, self.tier_f = 0.0, {}

    def fair_start(self, tenant: str, now: float) -> int:
        self.clock(now)
        return max(self.fair_v, self.fair_f.get(tenant, 0))

    def fair_served(self, tag: int, now: float, lease: float) -> None:
        self.fair_v = max(self.fair_v, tag)
        self.fair_until = now + lease * 4
        if self.fair_v > FAIR_REBASE:
            by = self.fair_v
            self.line = sorted(((s // SHIFT) * SHIFT + max(0, s % SHIFT - by), r)
                               for s, r in self.line)
            self.scores = {r: s for s, r in self.line}
            self.fair_f = {t: max(0, f - by) for t, f in self.fair_f.items()}
            self.fair_v = 0
            for lst in self.tier_line.values():
                lst[:] = sorted((self.scores[r], r) for _, r in lst)

    def rescore(self, rid: str, score: int) -> None:
        """Move a waiter to a new score (an aged waiter's promotion)."""
        old = self.scores[rid]
        del self.line[bisect.bisect_left(self.line, (old, rid))]
        bisect.insort(self.line, (score, rid))
        self.scores[rid] = score
        tier = self.tier_of.get(rid)
        if tier is not None:
            lst = self.tier_line[tier]
            del lst[bisect.bisect_left(lst, (old, rid))]
            bisect.insort(lst, (score, rid))

    def age(self, edge: float) -> bool:
        """Waiters that arrived before `edge` move ahead of every priority, oldest first."""
        moved = False
        while self.aging_q and self.aging_q[0][0] <= edge:
            arrived, rid = self.aging_q.popleft()
            if rid in self.scores:
                self.rescore(rid, PROMOTED + int(arrived * 1000))
                moved = True
        return moved

    def tier_rank(self, req: AdmitRequest, score: int, now: float) -> list[tuple[int, str]]:
        """The tiers with demand as (tier, its first waiter), in the order start-time fair
        queueing serves them (see lua/tiers.lua); `req`'s tier has demand through `req`."""
        self.clock(now)
        ranked: list[tuple[tuple[int, float, int, int], int, str]] = []
        for j, (name, share) in enumerate(req.tiers):
            lst = self.tier_line.get(name)
            first = lst[0] if lst else None
            if j == req.tier and (first is None or first[1] == req.request_id
                                  or first[0] >= score):
                first = (score, req.request_id)
            if first is None:
                continue
            key = ((0, max(self.tier_f.get(name, 0.0), self.tier_v), first[0], j) if share > 0
                   else (1, 0.0, first[0], j))
            ranked.append((key, j, first[1]))
        ranked.sort()
        return [(j, first) for _, j, first in ranked]

    def tier_charge(self, name: str, share: float, now: float, lease: float) -> None:
        if share > 0:
            start = max(self.tier_f.get(name, 0.0), self.tier_v)
            # Kept as Redis keeps it (Lua writes numbers with 14 significant digits).
            self.tier_f[name] = float(f"{start + 1 / share:.14g}")
            self.tier_v = max(self.tier_v, start)
            self.fair_until = max(self.fair_until, now + lease * 4)

    def dep(self, deployment_id: str) -> _Deployment:
        d = self.deployments.get(deployment_id)
        if d is None:
            d = self.deployments[deployment_id] = _Deployment()
        return d

    def remove(self, rid: str) -> int | None:
        """Take `rid` out of the line; returns its rank before removal."""
        score = self.scores.pop(rid, None)
        self.leases.pop(rid, None)
        self.arrived.pop(rid, None)
        self.tenant_of.pop(rid, None)
        tier = self.tier_of.pop(rid, None)
        if score is None:
            return None
        if tier is not None:
            lst = self.tier_line[tier]
            del lst[bisect.bisect_left(lst, (score, rid))]
        i = bisect.bisect_left(self.line, (score, rid))
        del self.line[i]
        return i

    def lease(self, rid: str, until: float) -> None:
        self.leases[rid] = until
        heapq.heappush(self.expiries, (until, rid))

    def prune(self, now: float) -> int:
        """Remove waiters whose lease ran out; returns how many left."""
        # Expiries in a heap: each admit looks only at leases that have run out. Renewed or
        # removed entries leave stale heap items, skipped when they surface.
        removed = 0
        while self.expiries and self.expiries[0][0] <= now:
            until, rid = heapq.heappop(self.expiries)
            if self.leases.get(rid) == until:
                self.remove(rid)
                removed += 1
        return removed

    def head(self) -> str | None:
        return self.line[0][1] if self.line else None


@dataclass
class _Window:
    """Requests and their tokens over the last 60 s (a tenant's, or its per-model share)."""

    times: deque[tuple[float, str]] = field(default_factory=deque)
    tokens: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def prune(self, now: float) -> None:
        while self.times and self.times[0][0] <= now - WINDOW:
            _, rid = self.times.popleft()
            self.total -= self.tokens.pop(rid, 0)

    def add(self, rid: str, tokens: int, now: float) -> None:
        self.times.append((now, rid))
        self.tokens[rid] = tokens
        self.total += tokens

    def reconcile(self, rid: str, used: int) -> None:
        if used >= 0 and rid in self.tokens:
            self.total += used - self.tokens[rid]
            self.tokens[rid] = used

    def back(self) -> float:
        return self.times[0][0] + WINDOW if self.times else -1.0


@dataclass
class _Tenant:
    """One key's or team's counters, as tenant.lua keeps them."""

    window: _Window = field(default_factory=_Window)
    run: dict[str, float] = field(default_factory=dict)
    models: dict[str, _Window] = field(default_factory=dict)
    spent: int = 0
    reserved: int = 0
    holds: dict[str, int] = field(default_factory=dict)
    period_start: float | None = None
    alerted: float | None = None

    def period(self, e: TenantEntity, now: float) -> float:
        if self.period_start is None:
            self.period_start = now
        period = e.period_ms / 1000
        if period > 0 and now >= self.period_start + period:
            self.period_start = now - (now - self.period_start) % period
            self.spent = 0
        return self.period_start

    def refusal(self, e: TenantEntity, group: str, tokens: int, cost: int, now: float
                ) -> tuple[str, float] | None:
        w = self.window
        w.prune(now)
        if e.rpm and len(w.times) >= e.rpm:
            return "rpm", w.back()
        if e.tpm and w.total > 0 and w.total + tokens > e.tpm:
            return "tpm", w.back()
        self.run = {r: t for r, t in self.run.items() if t > now}
        if e.parallel and len(self.run) >= e.parallel:
            return "parallel", -1.0
        m = self.models.setdefault(group, _Window())
        m.prune(now)
        if e.model_rpm and len(m.times) >= e.model_rpm:
            return "model_rpm", m.back()
        if e.model_tpm and m.total > 0 and m.total + tokens > e.model_tpm:
            return "model_tpm", m.back()
        if e.budget >= 0:
            start = self.period(e, now)
            if self.spent + self.reserved + cost > e.budget or self.spent >= e.budget:
                return "budget", start + e.period_ms / 1000 if e.period_ms else -1.0
        return None


_Open = list[tuple[int, Candidate, _Deployment]]


def _hold(share: float, limit: int) -> int:
    """Units of `limit` held for a tier with `share` while it has demand (lua/tiers.lua)."""
    return math.floor(share * limit + 1e-9)


def _tier_fits(req: AdmitRequest, demand: set[int], j: int, c: Candidate, d: _Deployment,
               need: int) -> bool:
    """Whether tier j may take one request and `need` tokens on open deployment d without
    taking what is held for another tier with demand (lua/tiers.lua)."""
    use: dict[str, tuple[int, int, int]] = {}
    dims = ((c.rpm, len(d.rpm), 0, 1), (c.tpm, d.total, 1, need),
            (c.max_parallel, len(d.run), 2, 1))
    for limit, used, x, want in dims:
        if limit <= 0:
            continue
        owed = 0
        for u, (name, share) in enumerate(req.tiers):
            hold = _hold(share, limit) if u != j and u in demand else 0
            if hold > 0:
                if name not in use:
                    use[name] = d.tier_use(name)
                owed += max(0, hold - use[name][x])
        if owed > 0 and limit - used - want < owed:
            name, share = req.tiers[j]
            if name not in use:
                use[name] = d.tier_use(name)
            if use[name][x] + want > _hold(share, limit):
                return False
    return True


def _tier_pick(req: AdmitRequest, ranked: list[tuple[int, str]], open_: _Open
               ) -> tuple[int, str | None, _Open]:
    """Who open capacity goes to (lua/tiers.lua tier_pick): 0 when `req` may go now, else 1
    and the waiter it should go to; and the open deployments `req` may use."""
    demand = {j for j, _ in ranked}
    mine = [x for x in open_ if _tier_fits(req, demand, req.tier, x[1], x[2], req.tokens)]
    if open_:
        if req.retry and mine:
            return 0, None, mine
        for j, first in ranked:
            if j == req.tier:
                if req.retry or not mine:
                    continue
            elif not any(_tier_fits(req, demand, j, c, d, 0) for _, c, d in open_):
                continue
            return (0, None, mine) if first == req.request_id else (1, first, mine)
        # The holds conflict (no tier with demand may go): the order alone decides.
    if req.retry or ranked[0][1] == req.request_id:
        return 0, None, open_
    return 1, ranked[0][1], open_


class MemoryState:
    name = "memory"

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._tenants: dict[tuple[str, str], _Tenant] = {}
        self._on_wake: WakeCallback | None = None
        self._seen: dict[str, float] = {}
        self.calls = 0
        self.kv = MemoryKV()
        """Values kept with releases (`Release.keep`), read through `kv_for`."""

    def _group(self, name: str) -> _Group:
        g = self._groups.get(name)
        if g is None:
            g = self._groups[name] = _Group()
        return g

    def _wake(self, rid: str | None) -> None:
        if rid is not None and self._on_wake is not None:
            # Delivered after the operation returns, as a pub/sub message would be.
            asyncio.get_running_loop().call_soon(self._on_wake, rid)

    async def start(self, on_wake: WakeCallback) -> None:
        self._on_wake = on_wake

    async def close(self) -> None:
        self._on_wake = None

    async def ping(self) -> None:
        return None

    def _tenant(self, tag: str, name: str) -> _Tenant:
        t = self._tenants.get((tag, name))
        if t is None:
            t = self._tenants[(tag, name)] = _Tenant()
        return t

    async def admit(self, req: AdmitRequest) -> Admitted | Waiting | Full | Refused:
        self.calls += 1
        ask = req.tenant
        if ask is None:
            return self._admit(req)
        now = _now()
        tenants = [self._tenant(ask.tag, e.name) for e in ask.entities]
        for i, (e, t) in enumerate(zip(ask.entities, tenants, strict=True)):
            refusal = t.refusal(e, ask.group, req.tokens, ask.cost, now)
            if refusal is not None:
                limit, back = refusal
                return Refused(limit, i, back - now if back >= 0 else None)
        result = self._admit(req)
        if not isinstance(result, Full):
            for e, t in zip(ask.entities, tenants, strict=True):
                t.window.add(req.request_id, req.tokens, now)
                t.run[req.request_id] = now + req.lease
                if e.model_rpm or e.model_tpm:
                    t.models[ask.group].add(req.request_id, req.tokens, now)
                if ask.cost > 0:
                    t.period(e, now)
                    t.reserved += ask.cost
                    t.holds[req.request_id] = ask.cost
        return result

    def _admit(self, req: AdmitRequest) -> Admitted | Waiting | Full:
        now = _now()
        g = self._group(req.group)
        pruned, head_before = g.prune(now) > 0, None
        if req.aging > 0:
            if not pruned:
                head_before = g.head()
            pruned = g.age(now - req.aging) or pruned
        if pruned and g.head() not in (None, req.request_id, head_before):
            self._wake(g.head())  # a dead waiter may have been the head, or an aged one is
        score = g.scores.get(req.request_id)
        fresh = score is None
        fair, start = req.fair_tenant, None
        if score is None:
            if req.retry:
                score = req.priority * SHIFT
            elif fair:
                start = g.fair_start(fair, now)
                score = req.priority * SHIFT + start
            else:
                score = req.priority * SHIFT + next(g.seq) % SHIFT
        ahead, pick, ranked = 0, None, []
        if req.tiers:
            ranked = g.tier_rank(req, score, now)  # a retry too: the holds need it
        elif not req.retry:
            ahead = bisect.bisect_left(g.line, (score, ""))
        looks = [(c, g.dep(c.deployment_id)) for c in req.candidates]
        seen = [(i, c, d, *d.inspect(c, req.tokens, now)) for i, (c, d) in enumerate(looks)]
        soonest = min((b for *_, ok, b in seen if not ok and b >= 0), default=-1.0)
        open_ = [(i, c, d) for i, c, d, ok, _ in seen if ok]
        usable = open_
        if req.tiers:
            ahead, pick, usable = _tier_pick(req, ranked, open_)
        if ahead == 0 and usable:
            i, c, d = self._choose(req, usable)
            d.reserve(req.slot_id, req.tokens, now, req.lease)
            if not fresh:
                g.remove(req.request_id)
            if req.tiers:
                g.tier_charge(*req.tiers[req.tier], now, req.lease)
            if fair:
                if start is not None:
                    g.fair_f[fair] = start + req.fair_cost
                served = g.fair_served_tokens
                served[fair] = served.get(fair, 0) + req.fair_cost
                g.fair_served(score - req.priority * SHIFT, now, req.lease)
            if len(usable) > 1 or d.inspect(c, req.tokens, now)[0]:
                self._wake(g.head())
            return Admitted(i)
        if pick is not None and open_:
            self._wake(pick)  # another tier's waiter is owed the open capacity
        if fresh:
            depth = len(g.line)
            full = req.max_waiting >= 0 and depth >= req.max_waiting
            if not full and req.max_waiting_priority >= 0:
                lo = req.priority * SHIFT
                same = bisect.bisect_left(g.line, (lo + SHIFT, "")) - bisect.bisect_left(
                    g.line, (lo, "")
                )
                full = same >= req.max_waiting_priority
            if full:
                admitted = sum(len(d.rpm) for _, _, d, *_ in seen)
                drain = (depth + 1) * WINDOW / admitted if admitted else None
                if soonest >= 0 and (depth == 0 or drain is None or drain < soonest - now):
                    drain = soonest - now  # never before capacity returns (lua/admit_core)
                g.stats.add("full", now)
                return Full(depth, drain)
            bisect.insort(g.line, (score, req.request_id))
            g.scores[req.request_id] = score
            g.arrived[req.request_id] = now
            if start is not None:
                g.fair_f[fair] = start + req.fair_cost
                g.tenant_of[req.request_id] = fair
            if req.aging > 0:
                g.aging_q.append((now, req.request_id))
            if req.tiers:
                name = req.tiers[req.tier][0]
                bisect.insort(g.tier_line.setdefault(name, []), (score, req.request_id))
                g.tier_of[req.request_id] = name
        if fair or req.tiers:
            g.fair_until = now + req.lease * 4
        g.lease(req.request_id, now + req.lease)
        position = 0 if req.tiers and ahead == 0 else bisect.bisect_left(
            g.line, (g.scores[req.request_id], req.request_id))
        retry_in = soonest - now if position == 0 and soonest >= 0 else None
        return Waiting(position, retry_in)

    @staticmethod
    def _choose(
        req: AdmitRequest, open_: list[tuple[int, Candidate, _Deployment]]
    ) -> tuple[int, Candidate, _Deployment]:
        if req.order == "least-busy":
            return min(open_, key=lambda x: (len(x[2].run), x[0]))
        if req.order == "usage":
            return min(open_, key=lambda x: (x[2].total, len(x[2].rpm), x[0]))
        if req.order == "latency":
            best = min(x[2].latency or 0.0 for x in open_)
            near = [x for x in open_ if (x[2].latency or 0.0) <= best * (1 + req.latency_buffer)]
            import random

            return near[int((req.rnd or random.random()) * len(near)) % len(near)]
        return open_[0]

    async def release(self, rel: Release) -> float:
        return self._release(rel)

    def release_now(self, rel: Release, end: TenantEnd | None = None
                    ) -> Awaitable[tuple[float, TenantReleased | None]]:
        """Done before this returns (nothing here waits): the future is done already."""
        done: asyncio.Future[tuple[float, TenantReleased | None]] = (
            asyncio.get_running_loop().create_future())
        done.set_result((self._release(rel), None if end is None else self._tenant_release(end)))
        return done

    def _release(self, rel: Release) -> float:
        self.calls += 1
        now = _now()
        g = self._group(rel.group)
        d = g.dep(rel.deployment_id)
        d.run.pop(rel.slot_id, None)
        d.reconcile(rel.slot_id, 0 if rel.outcome in ("fail", "fatal") else rel.tokens_used)
        if rel.fair_tenant and rel.fair_delta and rel.fair_tenant in g.fair_f:
            g.fair_f[rel.fair_tenant] = max(0, g.fair_f[rel.fair_tenant] + rel.fair_delta)
            served = g.fair_served_tokens
            if rel.fair_tenant in served:
                served[rel.fair_tenant] = max(0, served[rel.fair_tenant] + rel.fair_delta)
        if rel.outcome in ("ok", "fail", "fatal"):
            d.stats.add("n", now)
            if rel.outcome != "ok":
                d.stats.add("e", now)
            elif rel.latency_ms >= 0:
                d.stats.add(f"l{_latency_bucket(rel.latency_ms)}", now)
        if rel.latency_ms >= 0 and rel.outcome == "ok":
            old = d.latency
            d.latency = rel.latency_ms if old is None else old * 0.7 + rel.latency_ms * 0.3
        cool_for = 0.0
        if rel.demanded_cooldown > 0:
            cool_for = rel.demanded_cooldown
        elif rel.outcome == "fatal":
            cool_for = rel.cooldown
        elif rel.outcome == "fail":
            d.fails = [t for t in d.fails if t > now - WINDOW] + [now]
            if len(d.fails) >= rel.allowed_fails:
                cool_for = rel.cooldown
        if cool_for > 0:
            if now + cool_for > d.cool_until:
                d.cool_until = now + cool_for
                d.cool_why = ("retry-after" if rel.demanded_cooldown > 0 else
                              "fatal" if rel.outcome == "fatal" else "failures")
            d.fails = []
        if rel.keep is not None:
            self.kv.set(rel.keep.key, rel.keep.value, rel.keep.ttl_ms / 1000)
            rel.keep.landed = True
        self._wake(g.head())
        return cool_for

    async def cancel(self, group: str, request_id: str, timed_out: bool = False) -> bool:
        self.calls += 1
        g = self._group(group)
        rank = g.remove(request_id)
        if rank is not None and timed_out:
            g.stats.add("timeout", _now())
        if rank == 0:
            self._wake(g.head())
        return rank is not None

    async def renew(
        self,
        group: str,
        waiters: Sequence[str],
        slots: Sequence[tuple[str, str]],
        lease: float,
    ) -> list[str]:
        self.calls += 1
        now = _now()
        g = self._group(group)
        before = g.head()
        g.prune(now)
        lost = []
        if waiters:
            g.fair_until = now + lease * 4  # as the line's metadata lives on in Redis
        for rid in waiters:
            if rid in g.leases:
                g.lease(rid, now + lease)
            else:
                lost.append(rid)
        for dep_id, slot in slots:
            d = g.dep(dep_id)
            d.prune(now)
            if slot in d.run:
                d.run[slot] = now + lease
        after = g.head()
        if after is not None and (after != before or after in waiters):
            self._wake(after)  # a head among the renewed waiters is announced again (renew.lua)
        return lost

    async def line(self, group: str) -> list[LineDepth]:
        now = _now()
        g = self._group(group)
        out: dict[int, tuple[int, float]] = {}
        for score, rid in g.line:  # in line order: a priority's first live member is its head
            if g.leases.get(rid, 0) <= now:
                continue
            prio = max(score // SHIFT, AGED)
            count, head = out.get(prio, (0, g.arrived.get(rid, now)))
            out[prio] = (count + 1, head)
        return [LineDepth(p, c, now - h) for p, (c, h) in sorted(out.items())]

    async def shares(self, group: str) -> list[TenantShare]:
        g = self._group(group)
        if _now() > g.fair_until:  # the clock has started again (as its Redis hash expires)
            return []
        waiting: dict[str, int] = {}
        for tenant in g.tenant_of.values():
            waiting[tenant] = waiting.get(tenant, 0) + 1
        served = {t: g.fair_served_tokens.get(t, 0) for t in waiting} | g.fair_served_tokens
        return top_shares([(t, waiting.get(t, 0), s) for t, s in served.items()])

    async def usage(self, group: str, deployment_ids: Sequence[str]) -> list[DeploymentUsage]:
        now = _now()
        g = self._group(group)
        out = []
        for dep_id in deployment_ids:
            d = g.dep(dep_id)
            edge = now - WINDOW
            requests = sum(1 for t in d.rpm if t > edge)
            tokens = sum(d.tokens.get(slot, 0) for t, slot in d.token_log if t > edge)
            running = sum(1 for until in d.run.values() if until > now)
            out.append(DeploymentUsage(dep_id, requests, tokens, running,
                                       max(0.0, d.cool_until - now)))
        return out

    async def overview(self, group: str, deployment_ids: Sequence[str],
                       tiers: Sequence[str] = ()) -> GroupView:
        now = _now()
        g = self._group(group)
        tenants: dict[str, int] = {}
        for _, rid in g.line:
            tenant = g.tenant_of.get(rid)
            if tenant is not None and g.leases.get(rid, 0) > now:
                tenants[tenant] = tenants.get(tenant, 0) + 1
        views = []
        for use in await self.usage(group, deployment_ids):
            d = g.dep(use.deployment_id)
            views.append(DeploymentView(
                use.deployment_id, use.requests, use.tokens, use.in_flight, use.cooldown,
                d.cool_why if use.cooldown else "", sum(1 for t in d.fails if t > now - WINDOW),
                d.latency, d.stats.recent("n", now), d.stats.recent("e", now),
                tuple(d.stats.recent(f"l{b}", now) for b in range(LATENCY_BUCKETS))))
        return GroupView(await self.line(group), tenants, views, g.stats.recent("full", now),
                         g.stats.recent("timeout", now),
                         tuple(self._tier_view(g, deployment_ids, t, now) for t in tiers))

    @staticmethod
    def _tier_view(g: _Group, deployment_ids: Sequence[str], tier: str, now: float
                   ) -> TierView:
        waiting = sum(1 for _, rid in g.line
                      if g.tier_of.get(rid) == tier and g.leases.get(rid, 0) > now)
        in_flight = requests = tokens = 0
        for dep_id in deployment_ids:
            d = g.dep(dep_id)
            in_flight += sum(1 for slot, until in d.run.items()
                             if until > now and slot_tier(slot) == tier)
            for t, slot in d.token_log:
                if t > now - WINDOW and slot_tier(slot) == tier:
                    requests += 1
                    tokens += d.tokens.get(slot, 0)
        return TierView(tier, waiting, in_flight, requests, tokens)

    async def seen(self, instance: str, window: float) -> dict[str, float]:
        now = _now()
        self._seen[instance] = now
        self._seen = {i: t for i, t in self._seen.items() if t > now - window}
        return {i: now - t for i, t in self._seen.items()}

    async def release_with_tenant(self, rel: Release, end: TenantEnd
                                  ) -> tuple[float, TenantReleased]:
        return self._release(rel), self._tenant_release(end)

    async def tenant_release(self, end: TenantEnd) -> TenantReleased:
        return self._tenant_release(end)

    def _tenant_release(self, end: TenantEnd) -> TenantReleased:
        self.calls += 1
        now = _now()
        ask, rid = end.ask, end.request_id
        crossed = []
        for i, e in enumerate(ask.entities):
            t = self._tenant(ask.tag, e.name)
            t.run.pop(rid, None)
            t.window.reconcile(rid, end.tokens_used)
            if ask.group in t.models:
                t.models[ask.group].reconcile(rid, end.tokens_used)
            t.reserved -= t.holds.pop(rid, 0)
            if end.cost <= 0 and ask.cost <= 0:
                continue  # reserved and cost nothing: the spend (and its alert) stays as it was
            start = t.period(e, now)
            t.spent += max(0, end.cost)
            if e.soft_budget >= 0 and t.spent >= e.soft_budget and t.alerted != start:
                t.alerted = start
                crossed.append(i)
        return TenantReleased(tuple(crossed))

    async def tenant_renew(self, ask: TenantAsk, request_ids: Sequence[str], lease: float
                           ) -> None:
        self.calls += 1
        now = _now()
        for e in ask.entities:
            t = self._tenant(ask.tag, e.name)
            for rid in request_ids:
                if rid in t.run and t.run[rid] > now:
                    t.run[rid] = now + lease

    async def tenant_usage(self, tag: str, entity: TenantEntity) -> TenantUsage:
        now = _now()
        t = self._tenant(tag, entity.name)
        edge = now - WINDOW
        requests = sum(1 for at, _ in t.window.times if at > edge)
        tokens = sum(t.window.tokens.get(r, 0) for at, r in t.window.times if at > edge)
        running = sum(1 for until in t.run.values() if until > now)
        start = t.period_start if t.period_start is not None else now
        spent = t.spent
        period = entity.period_ms / 1000
        if period > 0 and now >= start + period:
            start, spent = now - (now - start) % period, 0
        # The in-process clock is monotonic; the period start is reported as wall time.
        return TenantUsage(requests, tokens, running, spent, t.reserved,
                           time.time() - (now - start))

    async def tenant_set_spend(self, tag: str, entity: TenantEntity, spent: int) -> None:
        t = self._tenant(tag, entity.name)
        t.period(entity, _now())
        t.spent = max(0, spent)

