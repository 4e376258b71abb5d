"""Shared state in Redis: one Lua script per operation, time from Redis, wake-ups by pub/sub.

One client (connection pool) and one subscriber connection per process. Both belong to the event
loop that created them; when the loop changes (a new Lambda invocation loop, a test) they are
rebuilt instead of reused broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from router.errors import ServiceUnavailable
from router.state.base import (
    AdmitRequest,
    Admitted,
    Full,
    LineDepth,
    Release,
    Waiting,
    WakeCallback,
)
from router.state.keys import WAKE_CHANNEL, GroupKeys
from router.state.scripts import script_source

log = logging.getLogger("laneway.state")

__all__ = ["RedisState"]

_SCRIPTS = ("admit", "release", "cancel", "renew", "status")


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
        max_connections: int = 32,
    ) -> None:
        self._url = url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._listener: asyncio.Task[None] | None = None
        self._on_wake: WakeCallback | None = None
        self.calls = 0
        """Round trips made (scripts, pings); read by benchmarks."""

    # -- connection ------------------------------------------------------------------------
    def _ensure(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio as aioredis
            import redis.exceptions as rexc
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            self._loop = loop
            # A bounded pool that makes callers wait for a free connection: scripts take well
            # under a millisecond, so a few dozen connections serve thousands of concurrent
            # requests, where one connection per request would storm Redis with connects.
            # A connect that times out under a burst (the event loop busy for a moment) is
            # tried again; a Redis that is down still fails fast (refused at once).
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_connections,
                timeout=self._op_timeout,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._op_timeout,
                health_check_interval=30,
                retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=2),
                retry_on_error=[rexc.ConnectionError, rexc.TimeoutError],
            )
            self._client = aioredis.Redis(connection_pool=pool)
            self._scripts = {
                name: self._client.register_script(script_source(f"{name}.lua"))
                for name in _SCRIPTS
            }
            self._listener = None
            if self._on_wake is not None:
                self._listener = loop.create_task(self._listen())
        return self._client

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        self._ensure()
        self.calls += 1
        try:
            return await self._scripts[name](keys=list(keys), args=list(args))
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def start(self, on_wake: WakeCallback) -> None:
        fresh = self._client is None or self._loop is not asyncio.get_running_loop()
        self._on_wake = on_wake
        self._ensure()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        if fresh:
            await self._warm()

    async def _warm(self) -> None:
        """Open the whole pool before traffic arrives: connects made in the middle of a burst
        can time out only because the event loop is busy, and would be mistaken for an outage."""
        client = self._client
        with contextlib.suppress(Exception):
            await asyncio.gather(*(client.ping() for _ in range(self._max_connections)))

    async def _listen(self) -> None:
        """Deliver wake-ups forever, reconnecting with backoff while Redis is away."""
        delay = 0.05
        while True:
            pubsub = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(WAKE_CHANNEL)
                delay = 0.05
                async for message in pubsub.listen():
                    if message and message.get("type") == "message" and self._on_wake:
                        data = message["data"]
                        self._on_wake(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep trying, quietly.
                log.debug("wake subscription lost: %s", type(exc).__name__)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if self._client is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._client = None

    async def ping(self) -> None:
        client = self._ensure()
        self.calls += 1
        try:
            await client.ping()
        except Exception as exc:
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


def _unavailable(exc: Exception) -> Exception:
    """Connection trouble becomes a 503; a script error stays what it is (a bug to see)."""
    import redis.exceptions as rexc

    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError | asyncio.TimeoutError):
        log.warning("redis call failed: %s: %s", type(exc).__name__, exc)
        return ServiceUnavailable(
            "The shared state store (Redis) is unreachable; try again shortly.",
            retry_after=1.0,
        )
    return exc
