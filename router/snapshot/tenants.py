"""The dashboard's tenant rows: each key and team with its requests, waiters and spend.

Records are listed from the tenant store at most every `LIST_EVERY` seconds (they change rarely;
listing reads every record); the counters are read on every snapshot, one `tenant_usage` call
per key or team, all sent at once so a Redis client pipelines them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.pricing import NANO
from router.state.base import StateBackend, TenantEntity
from router.tenants.gate import entities_of
from router.tenants.records import KeyRecord, Limits, Principal, TeamRecord, duration_seconds
from router.tenants.stored import Tenants

__all__ = ["MAX_ROWS", "TenantRows"]

MAX_ROWS = 50
"""Keys (and, separately, teams) shown: the first ones created."""
LIST_EVERY = 5.0
_ANY_KEY = KeyRecord(key_hash="-", key_last4="----")


@dataclass(frozen=True, slots=True)
class _Row:
    kind: str
    record: KeyRecord | TeamRecord
    tag: str
    entity: TenantEntity
    limits: Limits
    fair: str
    """Its name in the line's fair-share bookkeeping."""


class TenantRows:
    def __init__(self, tenants: Tenants, state: StateBackend) -> None:
        self.tenants = tenants
        self.state = state
        self._rows: list[_Row] = []
        self._totals = {"keys": 0, "teams": 0}
        self._listed = -LIST_EVERY

    async def _list(self) -> None:
        if time.monotonic() - self._listed < LIST_EVERY:
            return
        keys, teams = await asyncio.gather(self.tenants.list_keys(size=MAX_ROWS),
                                           self.tenants.list_teams(size=MAX_ROWS))
        by_id = {t.team_id: t for t in teams.items}
        rows = []
        for key in keys.items:
            team = by_id.get(key.team_id or "")
            tag, entities = entities_of(Principal("key", key, team), "")
            rows.append(_Row("key", key, tag, entities[0], key.limits,
                             f"k:{key.key_hash[:24]}"))
        for team in teams.items:
            tag, entities = entities_of(Principal("key", _ANY_KEY, team), "")
            rows.append(_Row("team", team, tag, entities[1], team.limits, f"t:{team.team_id}"))
        self._rows, self._listed = rows, time.monotonic()
        self._totals = {"keys": keys.total, "teams": teams.total}

    async def read(self, waiting: Mapping[str, int], fairness: str,
                   served_share: Mapping[str, float]) -> dict[str, Any]:
        """The rows, with `waiting` (waiters per fair-share tenant, every group summed) and
        `served_share` (each fair-share tenant's part of the service all groups gave since
        their fair-share clocks last started)."""
        await self._list()
        rows = self._rows
        usages = await asyncio.gather(*(self.state.tenant_usage(r.tag, r.entity) for r in rows))
        team_waiting: dict[str, int] = {}
        out = []
        for row, use in zip(rows, usages, strict=True):
            record = row.record
            lim = row.limits
            period = duration_seconds(lim.budget_duration) if lim.budget_duration else 0.0
            item: dict[str, Any] = {"kind": row.kind}
            if isinstance(record, KeyRecord):
                item |= {"id": record.display, "alias": record.key_alias,
                         "team_id": record.team_id, "blocked": record.blocked}
                # Which waiters are a key's depends on what fair share orders by.
                mine = waiting.get(row.fair, 0) if fairness == "key" or (
                    fairness == "team" and not record.team_id) else None
                if mine and record.team_id:
                    team_waiting[record.team_id] = team_waiting.get(record.team_id, 0) + mine
            else:
                item |= {"id": record.team_id, "alias": record.team_alias,
                         "blocked": record.blocked}
                mine = waiting.get(row.fair, 0) if fairness in ("key", "team") else None
            item |= {
                "waiting": mine,
                "in_progress": use.in_flight,
                "requests_60s": use.requests,
                "tokens_60s": use.tokens,
                "served_share": (None if mine is None
                                 else round(served_share.get(row.fair, 0.0), 4)),
                "spend_usd": round(use.spent / NANO, 6),
                "max_budget_usd": lim.max_budget,
                "soft_budget_usd": lim.soft_budget,
                "budget_resets_at": round(use.period_start + period, 3) if period else None,
                "rpm_limit": lim.rpm_limit,
                "max_parallel_requests": lim.max_parallel_requests,
            }
            out.append(item)
        for item in out:  # a team's waiters counted by key (fairness "key")
            if item["kind"] == "team" and item["waiting"] is not None:
                item["waiting"] += team_waiting.get(item["id"], 0)
        return {"rows": out, "total": dict(self._totals), "shown_max": MAX_ROWS}
