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
from collections.abc import Callable, Sequence
from typing import Any

from router.errors import ServiceUnavailable
from router.state.base import (
    AdmitRequest,
    Admitted,
    DeploymentUsage,
    Full,
    LineDepth,
    Release,
    Waiting,
    WakeCallback,
)
from router.state.cluster import ClusterAwareClient
from router.state.keys import NOTICE_PREFIX, WAKE_CHANNEL, GroupKeys
from router.state.resp import RedisUnavailable
from router.state.scripts import script_source

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
        self._listener: asyncio.Task[None] | None = None
        self._on_wake: WakeCallback | None = None
        self._notice_listeners: list[Callable[[str], None]] = []
        self.calls = 0
        """Round trips made (scripts, pings); read by benchmarks."""

    # -- connection ------------------------------------------------------------------------
    def _ensure(self) -> ClusterAwareClient:
        loop = asyncio.get_running_loop()
        if self._resp is None or self._loop is not loop:
            self._loop = loop
            self._resp = ClusterAwareClient(self._url, connect_timeout=self._connect_timeout,
                                            op_timeout=self._op_timeout)
            self._listener = None
            if self._on_wake is not None or self._notice_listeners:
                self._listener = loop.create_task(self._listen())
        return self._resp

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        resp = self._ensure()
        self.calls += 1
        try:
            return await resp.run_script(script_source(f"{name}.lua"), list(keys), list(args))
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
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if self._resp is not None and self._loop is asyncio.get_running_loop():
            self._resp.close()  # a connection of a loop that is gone closed with it
        self._resp = None

    async def ping(self) -> None:
        resp = self._ensure()
        self.calls += 1
        try:
            await resp.execute("PING")
        except RedisUnavailable as exc:
            raise _unavailable(exc) from exc

    # -- operations ------------------------------------------------------------------------
    async def admit(self, req: AdmitRequest) -> Admitted | Waiting | Full:
        g = GroupKeys.of(req.group)
        keys = [g.line, g.wlease, g.wmeta, g.seq, g.health]
        args: list[Any] = [
            req.request_id, req.slot_id, req.priority, req.tokens, _ms(req.lease), req.order,
            req.max_waiting, req.max_waiting_priority, 1 if req.retry else 0, WAKE_CHANNEL,
            req.rnd or random.random(), req.latency_buffer,
        ]
        for c in req.candidates:
            d = g.deployment(c.deployment_id)
            keys += [d.rpm, d.tpm, d.tok, d.run]
            args += [c.deployment_id, c.rpm, c.tpm, c.max_parallel]
        reply = await self._run("admit", keys, args)
        kind = int(reply[0])
        if kind == 1:
            return Admitted(int(reply[1]) - 1)
        retry = int(reply[2])
        retry_in = retry / 1000 if retry >= 0 else None
        if kind == 0:
            return Waiting(int(reply[1]), retry_in)
        return Full(int(reply[1]), retry_in)

    async def release(self, rel: Release) -> float:
        g = GroupKeys.of(rel.group)
        d = g.deployment(rel.deployment_id)
        reply = await self._run(
            "release",
            [g.line, g.health, d.tpm, d.tok, d.run, d.fails],
            [rel.slot_id, rel.deployment_id, rel.tokens_used, round(rel.latency_ms, 3),
             rel.outcome, rel.allowed_fails, _ms(rel.cooldown), _ms(rel.demanded_cooldown),
             WAKE_CHANNEL],
        )
        return int(reply[1]) / 1000 if int(reply[0]) else 0.0

    async def cancel(self, group: str, request_id: str) -> bool:
        g = GroupKeys.of(group)
        reply = await self._run("cancel", [g.line, g.wlease, g.wmeta], [request_id, WAKE_CHANNEL])
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
        lost = await self._run("renew", keys, args)
        return [x.decode() if isinstance(x, bytes) else str(x) for x in lost]

    async def line(self, group: str) -> list[LineDepth]:
        g = GroupKeys.of(group)
        reply = await self._run("status", [g.line, g.wlease, g.wmeta], [])
        now = int(reply[0])
        return [
            LineDepth(int(reply[i]), int(reply[i + 1]), (now - int(reply[i + 2])) / 1000)
            for i in range(1, len(reply), 3)
        ]

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


def _unavailable(exc: RedisUnavailable) -> ServiceUnavailable:
    """An unreachable Redis is a 503; a script error (ScriptError) propagates as the bug it is."""
    log.warning("redis call failed: %s", exc)
    return ServiceUnavailable(
        "The shared state store (Redis) is unreachable; try again shortly.", retry_after=1.0)
