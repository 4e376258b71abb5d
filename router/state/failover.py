"""Fail-open: Redis first; while it is unreachable, per-instance state in process.

With `router_settings.redis_fail_open: true` a Redis outage degrades laneway to per-instance
limits instead of answering 503. Every `retry_every` seconds one call tries Redis again, so the
gateway returns to shared state by itself when Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from router.errors import ServiceUnavailable
from router.state.base import (
    AdmitRequest,
    Admitted,
    DeploymentUsage,
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
    Waiting,
    WakeCallback,
)
from router.state.memory import MemoryState
from router.state.redis_store import RedisState

log = logging.getLogger("laneway.state")
T = TypeVar("T")

__all__ = ["FailOpenState"]


class FailOpenState:
    name = "redis"

    def __init__(self, primary: RedisState, retry_every: float = 1.0) -> None:
        self.primary = primary
        self.fallback = MemoryState()
        self.retry_every = retry_every
        self._down_until = 0.0

    @property
    def calls(self) -> int:
        return self.primary.calls

    @property
    def degraded(self) -> bool:
        """True while Redis is treated as unreachable (limits are per instance)."""
        return time.monotonic() < self._down_until

    async def _either(self, op: Callable[[Any], Awaitable[T]]) -> T:
        if time.monotonic() >= self._down_until:
            try:
                result = await op(self.primary)
            except ServiceUnavailable:
                self._went_down()
            else:
                self._came_back()
                return result
        return await op(self.fallback)

    def _went_down(self) -> None:
        if self._down_until == 0.0:
            log.warning("Redis unreachable: using per-instance limits until it returns")
        self._down_until = time.monotonic() + self.retry_every

    def _came_back(self) -> None:
        if self._down_until:
            log.warning("Redis reachable again: shared limits restored")
            self._down_until = 0.0

    async def start(self, on_wake: WakeCallback) -> None:
        await self.fallback.start(on_wake)
        await self.primary.start(on_wake)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()

    async def ping(self) -> None:
        await self._either(lambda s: s.ping())

    async def admit(self, req: AdmitRequest) -> Admitted | Waiting | Full | Refused:
        async def admit(state: Any) -> Admitted | Waiting | Full | Refused:
            sent = time.monotonic()
            result = await state.admit(req)
            if state is self.fallback and isinstance(result, Admitted):
                # Its lease runs from now, not from the Redis call that failed first.
                result = replace(result, sent=sent)
            return result

        return await self._either(admit)

    async def release(self, rel: Release) -> float:
        return await self._either(lambda s: s.release(rel))

    async def cancel(self, group: str, request_id: str, timed_out: bool = False) -> bool:
        # A waiter may sit in either line: leave both.
        here = await self.fallback.cancel(group, request_id, timed_out)
        return await self._either(lambda s: s.cancel(group, request_id, timed_out)) or here

    async def renew(
        self, group: str, waiters: Sequence[str], slots: Sequence[tuple[str, str]], lease: float
    ) -> list[str]:
        return await self._either(lambda s: s.renew(group, waiters, slots, lease))

    async def line(self, group: str) -> list[LineDepth]:
        return await self._either(lambda s: s.line(group))

    async def shares(self, group: str) -> list[TenantShare]:
        return await self._either(lambda s: s.shares(group))

    async def usage(self, group: str, deployment_ids: Sequence[str]) -> list[DeploymentUsage]:
        return await self._either(lambda s: s.usage(group, deployment_ids))

    async def overview(self, group: str, deployment_ids: Sequence[str],
                       tiers: Sequence[str] = ()) -> GroupView:
        return await self._either(lambda s: s.overview(group, deployment_ids, tiers))

    async def seen(self, instance: str, window: float) -> dict[str, float]:
        return await self._either(lambda s: s.seen(instance, window))

    async def release_with_tenant(self, rel: Release, end: TenantEnd
                                  ) -> tuple[float, TenantReleased]:
        return await self._either(lambda s: s.release_with_tenant(rel, end))

    def release_now(self, rel: Release, end: TenantEnd | None = None
                    ) -> Awaitable[tuple[float, TenantReleased | None]]:
        if self.degraded:
            return self.fallback.release_now(_unkept(rel), end)
        return self._sent(self.primary.release_now(rel, end), rel, end)

    async def _sent(self, sent: Awaitable[tuple[float, TenantReleased | None]], rel: Release,
                    end: TenantEnd | None) -> tuple[float, TenantReleased | None]:
        try:
            result = await sent
        except ServiceUnavailable:
            self._went_down()
            return await self.fallback.release_now(_unkept(rel), end)
        self._came_back()
        return result

    async def tenant_release(self, end: TenantEnd) -> TenantReleased:
        return await self._either(lambda s: s.tenant_release(end))

    async def tenant_renew(self, ask: TenantAsk, request_ids: Sequence[str], lease: float
                           ) -> None:
        await self._either(lambda s: s.tenant_renew(ask, request_ids, lease))

    async def tenant_usage(self, tag: str, entity: TenantEntity) -> TenantUsage:
        return await self._either(lambda s: s.tenant_usage(tag, entity))

    async def tenant_set_spend(self, tag: str, entity: TenantEntity, spent: int) -> None:
        await self._either(lambda s: s.tenant_set_spend(tag, entity, spent))


def _unkept(rel: Release) -> Release:
    """`rel` without its kept value: kept values live in Redis only (router/state/kv.py), so
    one the process kept could not be found by another instance."""
    return rel if rel.keep is None else replace(rel, keep=None)
