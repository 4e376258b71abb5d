"""Shared state in Redis: one Lua script per operation, time from Redis, wake-ups by pub/sub.

Per process: one pipelined connection for the scripts and one subscriber connection for
wake-ups (both router/state/resp.py), plus one script connection per further node when the
server is a Redis Cluster (router/state/cluster.py). All belong to the event loop that created
them; when the loop changes (a new Lambda invocation loop, a test) they are rebuilt instead of
reused broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, cast

from router.errors import ServiceUnavailable
from router.state.base import (
    LATENCY_BUCKETS,
    REFUSAL_CODES,
    AdmitRequest,
    Admitted,
    DeploymentUsage,
    DeploymentView,
    Full,
    GroupView,
    Kept,
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
    top_shares,
)
from router.state.cluster import ClusterAwareClient
from router.state.keys import (
    CACHE_PREFIX,
    FLEET_SEEN,
    NOTICE_PREFIX,
    WAKE_CHANNEL,
    GroupKeys,
    TenantKeys,
)
from router.state.resp import RedisUnavailable, ScriptError
from router.state.scripts import script

log = logging.getLogger("laneway.state")

__all__ = ["RedisState"]


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class RedisState:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 0.1,
        op_timeout: float = 2.0,
    ) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resp: ClusterAwareClient | None = None
        self._lease_resp: ClusterAwareClient | None = None
        """Renewals' own connections (see `_renewals`)."""
        self._listener: asyncio.Task[None] | None = None
        self._on_wake: WakeCallback | None = None
        self._split_tenants = False
        """True on a Redis Cluster: a tenant's and a group's keys may live on two nodes, so
        their scripts run one after the other instead of as one."""
        self._notice_listeners: list[Callable[[str], None]] = []
        self._cache_listeners: list[Callable[[str], None]] = []
        self.calls = 0
        """Round trips made (scripts, pings); read by benchmarks."""

    # -- connection ------------------------------------------------------------------------
    def _ensure(self) -> ClusterAwareClient:
        loop = asyncio.get_running_loop()
        if self._resp is None or self._loop is not loop:
            self._loop = loop
            self._resp = ClusterAwareClient(self._url, connect_timeout=self._connect_timeout,
                                            op_timeout=self._op_timeout)
            self._lease_resp = None
            self._listener = None
            if self._on_wake is not None or self._notice_listeners or self._cache_listeners:
                self._listener = loop.create_task(self._listen())
        return self._resp

    def _renewals(self, lease: float) -> ClusterAwareClient:
        """Lease renewals travel on connections of their own, with a call timeout of a third of
        a lease. On the shared connection a renewal would queue behind every admission this
        instance has pipelined (thousands, in a burst), and one call left hanging for the whole
        call timeout would outlast the leases it was sent to keep."""
        self._ensure()
        if self._lease_resp is None:
            self._lease_resp = ClusterAwareClient(
                self._url, connect_timeout=self._connect_timeout,
                op_timeout=min(self._op_timeout, lease / 3))
        return self._lease_resp

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any], *,
                   client: ClusterAwareClient | None = None) -> Any:
        resp = client or self._ensure()
        return await self._answer(name, resp.run_script(
            script(f"{name}.lua"), list(keys), list(args)), time.perf_counter())

    def _send(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """Like `_run`, but the script is written before this returns when a connection is
        open (see `RespClient.script_now`): the caller may await its answer later, or never."""
        resp, started = self._ensure(), time.perf_counter()
        code, keys, args = script(f"{name}.lua"), list(keys), list(args)
        sent = resp.script_now(code, keys, args)
        return self._answer(name, sent if sent is not None else resp.run_script(code, keys, args),
                            started)

    async def _answer(self, name: str, reply: Awaitable[Any], started: float) -> Any:
        """The one place a script's answer is awaited (timed by `TimedRedisState`)."""
        self.calls += 1
        try:
            return await reply
        except RedisUnavailable as exc:
            raise _unavailable(exc) from exc

    async def start(self, on_wake: WakeCallback) -> None:
        fresh = self._resp is None or self._loop is not asyncio.get_running_loop()
        self._on_wake = on_wake
        resp = self._ensure()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if fresh:
            # Connect before traffic arrives; a Redis that is away now is retried per call.
            with contextlib.suppress(RedisUnavailable):
                await resp.execute("PING")

    async def _listen(self) -> None:
        """Deliver wake-ups forever, reconnecting with backoff while Redis is away."""
        delay = 0.05
        while True:
            try:
                await self._ensure().subscribe(WAKE_CHANNEL, self._deliver)
                delay = 0.05  # the connection was lost after working: retry soon
            except RedisUnavailable as exc:
                log.debug("wake subscription failed: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _deliver(self, request_id: str) -> None:
        if request_id.startswith(NOTICE_PREFIX):  # never a request id: a notice for everyone
            for listener in self._notice_listeners:
                listener(request_id[len(NOTICE_PREFIX):])
        elif request_id.startswith(CACHE_PREFIX):  # a response cache entry is ready
            for listener in self._cache_listeners:
                listener(request_id[len(CACHE_PREFIX):])
        elif self._on_wake is not None:
            self._on_wake(request_id)

    # -- for other stores sharing this connection (router/tenants) ---------------------------
    def listen_for_notices(self, listener: Callable[[str], None]) -> None:
        """Call `listener(text)` for every `notify(text)` of any instance, over the wake-up
        subscription (started now if the lanes have not started it yet)."""
        if listener not in self._notice_listeners:
            self._notice_listeners.append(listener)
        self._ensure()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def listen_for_cache(self, listener: Callable[[str], None]) -> None:
        """Call `listener(digest)` whenever any instance finishes a response cache entry
        (router/cache), over the same wake-up subscription."""
        if listener not in self._cache_listeners:
            self._cache_listeners.append(listener)
        self._ensure()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def notify(self, text: str) -> None:
        await self.command("", "PUBLISH", WAKE_CHANNEL, NOTICE_PREFIX + text)

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one of the scripts in lua/ (a 503 while Redis is unreachable)."""
        return await self._run(name, keys, args)

    async def command(self, key: str, *args: Any) -> Any:
        """One command on `key`'s node; "" for a keyless command (PUBLISH)."""
        resp = self._ensure()
        self.calls += 1
        try:
            return await (resp.command(key, *args) if key else resp.execute(*args))
        except RedisUnavailable as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        self._on_wake = None  # a late call after closing must not start a new listener
        self._notice_listeners.clear()  # (their owners register again on their next call)
        self._cache_listeners.clear()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if self._resp is not None and self._loop is asyncio.get_running_loop():
            self._resp.close()  # a connection of a loop that is gone closed with it
            if self._lease_resp is not None:
                self._lease_resp.close()
        self._resp = self._lease_resp = None

    async def ping(self) -> None:
        resp = self._ensure()
        self.calls += 1
        try:
            await resp.execute("PING")
        except RedisUnavailable as exc:
            raise _unavailable(exc) from exc

    # -- operations ------------------------------------------------------------------------
    async def admit(self, req: AdmitRequest) -> Admitted | Waiting | Full | Refused:
        keys, args = self._admit_call(req)
        if req.tenant is None:
            return _admission(await self._run("admit", keys, args))
        tkeys, targs = _tenant_call(req.tenant)
        if not self._split_tenants:
            try:
                reply = await self._run(
                    "admit_tenant", keys + tkeys,
                    [len(keys), len(args), *args, len(req.tenant.entities), req.tenant.cost,
                     *targs])
            except ScriptError as exc:
                if "CROSSSLOT" not in str(exc):
                    raise
                self._split_tenants = True
            else:
                return _admission(reply)
        # Two nodes: the tenant first (nothing is admitted for a refused request), then the
        # group; a full line gives the tenant's reservation back.
        reply = await self._run("tenant_admit", tkeys, [
            req.request_id, req.tokens, req.tenant.cost, _ms(req.lease),
            len(req.tenant.entities), *targs])
        if int(reply[0]) == -2:
            return _admission(reply)
        result = _admission(await self._run("admit", keys, args))
        if isinstance(result, Full):
            await self.tenant_release(TenantEnd(req.tenant, req.request_id, undo=True))
        return result

    def _admit_call(self, req: AdmitRequest) -> tuple[list[str], list[Any]]:
        g = GroupKeys.of(req.group)
        keys = [g.line, g.wlease, g.wmeta, g.seq, g.health]
        args: list[Any] = [
            req.request_id, req.slot_id, req.priority, req.tokens, _ms(req.lease), req.order,
            req.max_waiting, req.max_waiting_priority, 1 if req.retry else 0, WAKE_CHANNEL,
            req.rnd or random.random(), req.latency_buffer, len(req.candidates),
        ]
        for c in req.candidates:
            d = g.deployment(c.deployment_id)
            keys += [d.rpm, d.tpm, d.tok, d.run]
            args += [c.deployment_id, c.rpm, c.tpm, c.max_parallel]
        if req.aging > 0 or req.tiers:
            args += [req.fair_tenant, req.fair_cost, _ms(req.aging), req.tier + 1,
                     len(req.tiers)]
            keys.append(g.aging)
            for name, share in req.tiers:
                args += [name, share]
                keys.append(g.tier(name))
        elif req.fair_tenant:
            args += [req.fair_tenant, req.fair_cost]
        return keys, args

    async def release(self, rel: Release) -> float:
        return (await self.release_now(rel))[0]

    def release_now(self, rel: Release, end: TenantEnd | None = None
                    ) -> Awaitable[tuple[float, TenantReleased | None]]:
        """The release (and the tenant's end) written before this returns when a connection
        is open; the awaitable gives what `release` and `release_with_tenant` return."""
        keep = rel.keep
        if keep is not None and self._split_tenants:
            # A Cluster: the kept value's key is in another slot, so it goes beside the
            # release (written at the same moment: still one round trip of waiting).
            return self._kept(self.release_now(replace(rel, keep=None), end), keep,
                              self._send("kv_put", [keep.key], [keep.value, keep.ttl_ms]))
        keys, args = _release_call(rel)
        if end is None:
            sent = self._released(self._send("release", keys, args),
                                  together=None if keep is None else (rel, None))
        elif self._split_tenants:
            tkeys, targs = _tenant_call(end.ask)
            sent = self._released(self._send("release", keys, args), self._send(
                "tenant_release", tkeys, _tenant_release_args(end, targs)))
        else:
            tkeys, targs = _tenant_call(end.ask)
            sent = self._released(self._send("release_tenant", keys + tkeys, [
                len(keys), len(args), *args, end.request_id, end.tokens_used, end.cost,
                end.ask.cost, len(end.ask.entities), *targs]), together=(rel, end))
        return sent if keep is None else self._kept(sent, keep)

    async def _released(self, group: Awaitable[Any], tenant: Awaitable[Any] | None = None, *,
                        together: tuple[Release, TenantEnd | None] | None = None
                        ) -> tuple[float, TenantReleased | None]:
        """The answers of `release_now`'s scripts: release.lua's (release_tenant.lua's when
        the tenant's end is `together` with it), then tenant_release.lua's when sent apart.
        `together`: what to send again apart should the script span two Cluster slots."""
        if tenant is not None:
            replies = await asyncio.gather(group, tenant, return_exceptions=True)
            for reply in replies:
                if isinstance(reply, BaseException):
                    raise reply
            return _cooldown(replies[0]), _tenant_released(replies[1])
        if together is None:
            return _cooldown(await group), None
        try:
            reply = await group
        except ScriptError as exc:
            if "CROSSSLOT" not in str(exc):
                raise
            self._split_tenants = True  # nothing ran: the parts apart
            return await self.release_now(*together)
        if together[1] is None:
            return _cooldown(reply), None
        return _cooldown(reply[0]), _tenant_released(reply[1])

    @staticmethod
    async def _kept(released: Awaitable[tuple[float, TenantReleased | None]], keep: Kept,
                    put: Awaitable[Any] | None = None) -> tuple[float, TenantReleased | None]:
        """`released`'s answer, once the value it keeps (or `put`, beside it) is written."""
        if put is None:
            result = await released
        else:
            replies = await asyncio.gather(released, put, return_exceptions=True)
            for reply in replies:
                if isinstance(reply, BaseException):
                    raise reply
            result = cast(tuple[float, TenantReleased | None], replies[0])
        keep.landed = True
        return result

    async def release_with_tenant(self, rel: Release, end: TenantEnd
                                  ) -> tuple[float, TenantReleased]:
        cooled, released = await self.release_now(rel, end)
        assert released is not None  # an end was given
        return cooled, released

    async def tenant_release(self, end: TenantEnd) -> TenantReleased:
        tkeys, targs = _tenant_call(end.ask)
        reply = await self._run("tenant_release", tkeys, _tenant_release_args(end, targs))
        return _tenant_released(reply)

    async def tenant_renew(self, ask: TenantAsk, request_ids: Sequence[str], lease: float
                           ) -> None:
        tkeys, targs = _tenant_call(ask)
        await self._run("tenant_renew", tkeys,
                        [_ms(lease), len(ask.entities), *targs, *request_ids],
                        client=self._renewals(lease))

    async def tenant_set_spend(self, tag: str, entity: TenantEntity, spent: int) -> None:
        keys = TenantKeys.of(tag).entity(entity.name, "")
        await self._run("tenant_set_spend", [keys[3]], [max(0, spent)])

    async def tenant_usage(self, tag: str, entity: TenantEntity) -> TenantUsage:
        keys = TenantKeys.of(tag).entity(entity.name, "")
        _, requests, tokens, running, spent, reserved, start = (
            int(x) for x in await self._run("tenant_status", keys, [entity.period_ms]))
        return TenantUsage(requests, tokens, running, spent, reserved, start / 1000)

    async def cancel(self, group: str, request_id: str, timed_out: bool = False) -> bool:
        g = GroupKeys.of(group)
        if timed_out:  # counted for the dashboard
            reply = await self._run("cancel", [g.line, g.wlease, g.wmeta, g.health],
                                    [request_id, WAKE_CHANNEL, 1])
        else:
            reply = await self._run("cancel", [g.line, g.wlease, g.wmeta],
                                    [request_id, WAKE_CHANNEL])
        return bool(reply)

    async def renew(
        self,
        group: str,
        waiters: Sequence[str],
        slots: Sequence[tuple[str, str]],
        lease: float,
    ) -> list[str]:
        g = GroupKeys.of(group)
        keys = [g.line, g.wlease, g.wmeta] + [g.deployment(dep).run for dep, _ in slots]
        args: list[Any] = [_ms(lease), WAKE_CHANNEL, len(waiters), *waiters]
        args += [slot for _, slot in slots]
        lost = await self._run("renew", keys, args, client=self._renewals(lease))
        return [x.decode() if isinstance(x, bytes) else str(x) for x in lost]

    async def line(self, group: str) -> list[LineDepth]:
        g = GroupKeys.of(group)
        reply = await self._run("status", [g.line, g.wlease, g.wmeta], [])
        now = int(reply[0])
        return [
            LineDepth(int(reply[i]), int(reply[i + 1]), (now - int(reply[i + 2])) / 1000)
            for i in range(1, len(reply), 3)
        ]

    async def shares(self, group: str) -> list[TenantShare]:
        g = GroupKeys.of(group)
        reply = await self._run("fair_status", [g.line, g.wlease, g.wmeta], [])
        return top_shares([(_text(reply[i]), int(reply[i + 1]), int(reply[i + 2]))
                           for i in range(0, len(reply), 3)])

    async def usage(self, group: str, deployment_ids: Sequence[str]) -> list[DeploymentUsage]:
        g = GroupKeys.of(group)
        keys = [g.health]
        for dep in deployment_ids:
            d = g.deployment(dep)
            keys += [d.rpm, d.tpm, d.tok, d.run]
        reply = await self._run("usage", keys, list(deployment_ids))
        now = int(reply[0])
        out = []
        for i, dep in enumerate(deployment_ids):
            requests, tokens, running, cool = (int(x) for x in reply[1 + 4 * i: 5 + 4 * i])
            out.append(DeploymentUsage(dep, requests, tokens, running,
                                       max(0.0, (cool - now) / 1000) if cool else 0.0))
        return out

    async def overview(self, group: str, deployment_ids: Sequence[str],
                       tiers: Sequence[str] = ()) -> GroupView:
        g = GroupKeys.of(group)
        keys = [g.line, g.wlease, g.wmeta, g.health]
        for dep in deployment_ids:
            d = g.deployment(dep)
            keys += [d.rpm, d.tpm, d.tok, d.run, d.fails]
        keys += [g.tier(name) for name in tiers]
        reply = await self._run("overview", keys,
                                [len(deployment_ids), *deployment_ids, *tiers])
        now, i = int(reply[0]), 2
        lines = []
        for _ in range(int(reply[1])):
            lines.append(LineDepth(int(reply[i]), int(reply[i + 1]),
                                   (now - int(reply[i + 2])) / 1000))
            i += 3
        tenants: dict[str, int] = {}
        count, i = int(reply[i]), i + 1
        for _ in range(count):
            tenants[_text(reply[i])] = int(reply[i + 1])
            i += 2
        full, timed_out = int(reply[i]), int(reply[i + 1])
        i += 2
        views = []
        for dep in deployment_ids:
            requests, tokens, running, cool = (int(x) for x in reply[i: i + 4])
            why, fails, lat = _text(reply[i + 4]), int(reply[i + 5]), _text(reply[i + 6])
            stats = [int(x) for x in reply[i + 7: i + 7 + 2 + LATENCY_BUCKETS]]
            views.append(DeploymentView(
                dep, requests, tokens, running, max(0.0, (cool - now) / 1000) if cool else 0.0,
                why if cool else "", fails, float(lat) if lat else None,
                stats[0], stats[1], tuple(stats[2:])))
            i += 7 + 2 + LATENCY_BUCKETS
        use = tuple(TierView(name, *(int(x) for x in reply[i + 4 * j: i + 4 * j + 4]))
                    for j, name in enumerate(tiers))
        return GroupView(lines, tenants, views, full, timed_out, use)

    async def seen(self, instance: str, window: float) -> dict[str, float]:
        reply = await self._run("seen", [FLEET_SEEN], [instance, _ms(window)])
        now = int(reply[0])
        return {_text(reply[j]): max(0.0, (now - int(float(reply[j + 1]))) / 1000)
                for j in range(1, len(reply), 2)}


def _admission(reply: Any) -> Admitted | Waiting | Full | Refused:
    kind = int(reply[0])
    if kind == 1:
        return Admitted(int(reply[1]) - 1)
    if kind == -2:
        retry = int(reply[3])
        return Refused(REFUSAL_CODES[int(reply[1])], int(reply[2]) - 1,
                       retry / 1000 if retry >= 0 else None)
    retry = int(reply[2])
    retry_in = retry / 1000 if retry >= 0 else None
    if kind == 0:
        return Waiting(int(reply[1]), retry_in)
    return Full(int(reply[1]), retry_in)


def _release_call(rel: Release) -> tuple[list[str], list[Any]]:
    g = GroupKeys.of(rel.group)
    d = g.deployment(rel.deployment_id)
    keys = [g.line, g.health, d.tpm, d.tok, d.run, d.fails]
    args: list[Any] = [
        rel.slot_id, rel.deployment_id, rel.tokens_used, round(rel.latency_ms, 3), rel.outcome,
        rel.allowed_fails, _ms(rel.cooldown), _ms(rel.demanded_cooldown), WAKE_CHANNEL]
    if rel.fair_tenant and rel.fair_delta:
        keys.append(g.wmeta)
        args += [rel.fair_tenant, rel.fair_delta]
    if rel.keep is not None:
        if len(args) == 9:
            args += ["", 0]
        keys.append(rel.keep.key)
        args += [rel.keep.value, rel.keep.ttl_ms]
    return keys, args


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cooldown(reply: Any) -> float:
    return int(reply[1]) / 1000 if int(reply[0]) else 0.0


def _tenant_call(ask: TenantAsk) -> tuple[list[str], list[Any]]:
    # The same entities (one tuple per key and group, router/tenants/gate.py) on every request
    # of a key: their keys and values are laid out once.
    slot = (id(ask.entities), ask.tag, ask.group)
    hit = _tenant_calls.get(slot)
    if hit is None or hit[0] is not ask.entities:
        t = TenantKeys.of(ask.tag)
        keys: list[str] = []
        args: list[Any] = []
        for e in ask.entities:
            keys += t.entity(e.name, ask.group)
            args += [e.rpm, e.tpm, e.parallel, e.model_rpm, e.model_tpm, e.budget,
                     e.soft_budget, e.period_ms]
        if len(_tenant_calls) >= 4096:
            _tenant_calls.clear()
        hit = _tenant_calls[slot] = (ask.entities, keys, args)
    return hit[1], hit[2]


_tenant_calls: dict[tuple[int, str, str], tuple[Any, list[str], list[Any]]] = {}


def _tenant_release_args(end: TenantEnd, targs: list[Any]) -> list[Any]:
    return [end.request_id, end.tokens_used, end.cost, 1 if end.undo else 0, end.ask.cost,
            len(end.ask.entities), *targs]


_NONE_CROSSED = TenantReleased()


def _tenant_released(reply: Any) -> TenantReleased:
    if not reply:  # nearly always: no soft budget crossed just now
        return _NONE_CROSSED
    return TenantReleased(tuple(int(i) - 1 for i in reply))


def _unavailable(exc: RedisUnavailable) -> ServiceUnavailable:
    """An unreachable Redis is a 503; a script error (ScriptError) propagates as the bug it is."""
    log.warning("redis call failed: %s", exc)
    return ServiceUnavailable(
        "The shared state store (Redis) is unreachable; try again shortly.", retry_after=1.0)
