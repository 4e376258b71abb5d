"""One picture of the whole fleet for the dashboard (`GET /ui/snapshot`): lines, deployments,
tenants and instances, read from the shared state.

Every read is sent at once: one `overview` call per model group, one `tenant_usage` per key
and team, one `seen` and one `ping` (timed: the Redis round trip the page shows). The Redis
client pipelines concurrent calls over its one connection, so a snapshot costs about one round
trip however many groups there are, and several browsers polling every second stay cheap.
Numbers that shared state does not hold (429 and 408 answers, latency percentiles, error rate)
come from this instance alone, under "this_instance" (router/snapshot/local.py).

    snapshots = Snapshots(router)       # registers its observer on the router
    data = await snapshots.take()
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from router.snapshot.local import SEEN_WINDOW, LocalStats, instance_name

if TYPE_CHECKING:
    from router.groups import Deployment, Group
    from router.router import Router
    from router.snapshot.tenants import TenantRows
    from router.state.base import DeploymentView, GroupView

__all__ = ["Snapshots"]


class Snapshots:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.local = LocalStats(router.state, instance_name(router.config.env))
        self._tenant_rows: TenantRows | None = None  # built on the first snapshot
        router.observers.append(self.local.observe)

    @property
    def tenant_rows(self) -> TenantRows:
        if self._tenant_rows is None:
            from router.snapshot.tenants import TenantRows

            self._tenant_rows = TenantRows(self.router.tenants, self.router.state)
        return self._tenant_rows

    async def take(self) -> dict[str, Any]:
        router, state = self.router, self.router.state
        started = time.perf_counter()
        groups = router.groups.all_groups()
        tiers = [name for name, _ in router.options.priority_reservation]
        views_f = asyncio.gather(*(state.overview(g.name, [d.id for d in g.deployments], tiers)
                                   for g in groups))
        seen_f = state.seen(self.local.instance, SEEN_WINDOW)
        rtt_f = _timed_ping(state)
        shares_f = router.tenant_shares([g.name for g in groups])
        views, seen, rtt, shares = await asyncio.gather(views_f, seen_f, rtt_f, shares_f)
        waiting: dict[str, int] = {}
        for view in views:
            for tenant, n in view.waiting_by_tenant.items():
                waiting[tenant] = waiting.get(tenant, 0) + n
        served: dict[str, int] = {}
        for group_shares in shares.values():
            for share in group_shares:
                served[share.tenant] = served.get(share.tenant, 0) + share.served
        total = sum(served.values())
        served_share = {t: s / total for t, s in served.items()} if total else {}
        tenants = await self.tenant_rows.read(waiting, router.options.fairness, served_share)
        return {
            "object": "laneway.snapshot",
            "time": round(time.time(), 3),
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "fleet": {
                "state": state.name,
                "degraded": bool(getattr(state, "degraded", False)),
                "redis_rtt_ms": rtt if state.name == "redis" else None,
                "instance": self.local.instance,
                "instances": [{"id": i, "seen_s_ago": round(ago, 1)}
                              for i, ago in sorted(seen.items(), key=lambda kv: kv[1])],
                "instances_window_s": SEEN_WINDOW,
            },
            "groups": [self._group(g, v) for g, v in zip(groups, views, strict=True)],
            "tenants": tenants,
        }

    def _group(self, group: Group, view: GroupView) -> dict[str, Any]:
        share_of = dict(self.router.options.priority_reservation)
        lanes = [{"priority": d.priority, "waiting": d.count,
                  "oldest_wait_ms": round(d.oldest_wait * 1000, 1)} for d in view.lines]
        return {
            "model_group": group.name,
            "waiting": sum(d.count for d in view.lines),
            # The head is the oldest waiter of the most important lane.
            "head_wait_ms": lanes[0]["oldest_wait_ms"] if lanes else None,
            "lanes": lanes,
            "admitted_60s": sum(d.requests for d in view.deployments),
            "in_flight": sum(d.in_flight for d in view.deployments),
            # The fleet's, this minute and the last (lua/stats.lua).
            "rejected_2m": view.rejected,
            "timed_out_2m": view.timed_out,
            "this_instance": self.local.group(group.name),
            # Reservation tiers (router_settings.priority_reservation): [] when none are set.
            "tiers": [{"tier": t.tier, "share": share_of.get(t.tier, 0.0), "waiting": t.waiting,
                       "in_flight": t.in_flight, "admitted_60s": t.requests,
                       "tokens_60s": t.tokens} for t in view.tiers],
            "deployments": [self._deployment(d, v)
                            for d, v in zip(group.deployments, view.deployments, strict=True)],
        }

    def _deployment(self, d: Deployment, v: DeploymentView) -> dict[str, Any]:
        parallel = d.max_parallel_requests or self.router.options.default_max_parallel_requests
        return {
            "id": d.id,
            "model": d.model,
            "provider": d.provider,
            "in_flight": v.in_flight,
            "max_parallel_requests": parallel or None,
            "rpm": {"used": v.requests, "limit": d.rpm or None},
            "tpm": {"used": v.tokens, "limit": d.tpm or None},
            "cooldown": ({"remaining_s": round(v.cooldown, 1), "reason": v.cooldown_reason}
                         if v.cooldown > 0 else None),
            "failures_60s": v.failures,
            "latency_ewma_ms": None if v.latency_ms is None else round(v.latency_ms, 1),
            # The fleet's attempts, this minute and the last (lua/stats.lua).
            "attempts_2m": v.attempts,
            "error_rate": round(v.failed / v.attempts, 3) if v.attempts else None,
            "latency_p50_ms": _bucket_quantile(v.latency_buckets, 0.5),
            "latency_p95_ms": _bucket_quantile(v.latency_buckets, 0.95),
            "this_instance": self.local.deployment(d.id),
        }


def _bucket_quantile(buckets: tuple[int, ...], q: float) -> float | None:
    """The q-quantile of a latency histogram whose bucket b holds [2^b, 2^(b+1)) ms,
    interpolated geometrically inside its bucket (about ±20 % at worst)."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen = q * total, 0
    for b, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = 0.0 if b == 0 else 2.0 ** b
            high = 2.0 ** (b + 1)
            frac = (rank - seen) / n
            return round(high * frac if b == 0 else low * (high / low) ** frac, 1)
        seen += n
    return round(2.0 ** len(buckets), 1)


async def _timed_ping(state: Any) -> float:
    started = time.perf_counter()
    await state.ping()
    return round((time.perf_counter() - started) * 1000, 2)
