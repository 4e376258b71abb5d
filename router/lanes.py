"""Priority admission and waiting.

`Lanes.acquire` asks the state backend to admit a request. When there is no capacity, or
better-ranked requests are waiting, the request waits in its group's line: it sleeps until the
backend wakes it (capacity was released, the request ahead was admitted or left), until the moment
capacity is known to return, or at most `safety_interval` (a safety net, not a poll loop), then
asks again. A per-process renewer keeps the leases of waiting and in-flight requests alive, so
entries of a crashed instance expire within one lease. A request that stops waiting for any
reason (served, timed out, cancelled by a client disconnect) leaves the line in a `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from router.errors import ClientDisconnected, QueueFull, RequestTimeout
from router.state.base import AdmitRequest, Admitted, Full, LineDepth, StateBackend

log = logging.getLogger("laneway.lanes")

__all__ = ["Lanes"]


class Lanes:
    def __init__(
        self,
        state: StateBackend,
        *,
        lease: float = 5.0,
        safety_interval: float = 1.0,
    ) -> None:
        self.state = state
        self.lease = lease
        self.safety_interval = safety_interval
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, set[str]] = defaultdict(set)  # group -> request ids
        self._slots: dict[str, dict[str, str]] = defaultdict(dict)  # group -> slot -> deployment
        self._renewer: asyncio.Task[None] | None = None
        self._started_on: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Connect to the state backend and subscribe to wake-ups ahead of the first request."""
        await self._ensure_started()

    async def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._started_on is not loop:
            self._started_on = loop
            self._renewer = None
            await self.state.start(self._wake)

    def _wake(self, request_id: str) -> None:
        event = self._events.get(request_id)
        if event is not None:
            event.set()

    # -- admission ---------------------------------------------------------------------------
    async def acquire(
        self,
        req: AdmitRequest,
        deadline: float,
        abandoned: Callable[[], Awaitable[None]] | None = None,
    ) -> tuple[Admitted, float]:
        """Admit `req`, waiting in line until `deadline` (monotonic). Returns the admission and
        the seconds spent waiting (0.0 when admitted at once).

        `abandoned()`, when given, returns once the client has gone away; it is watched only
        while the request waits, so a departed client frees its place at once."""
        await self._ensure_started()
        result = await self.state.admit(req)
        if isinstance(result, Admitted):
            return result, 0.0
        if isinstance(result, Full):
            raise _full(req.group, result)
        started = time.monotonic()
        event = asyncio.Event()
        self._events[req.request_id] = event
        self._waiting[req.group].add(req.request_id)
        self._ensure_renewer()
        admitted = False
        gone = asyncio.ensure_future(abandoned()) if abandoned is not None else None
        if gone is not None:
            gone.add_done_callback(lambda _: event.set())
        try:
            while True:
                if gone is not None and gone.done():
                    raise ClientDisconnected(
                        f"The client left while waiting for model group `{req.group}`.")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(
                        f"Request timed out after waiting {time.monotonic() - started:.1f}s "
                        f"for capacity on model group `{req.group}`."
                    )
                # Only the head can be admitted next, and it is woken when that may happen; the
                # rest hear when they become the head (a renewal also announces a head whose
                # waiter died), so their safety net can be as long as a lease. Jittered, so that
                # waiters that arrived together do not all check at once.
                safety = self.safety_interval if result.position == 0 else max(
                    self.safety_interval, self.lease)
                pause = min(remaining, safety * random.uniform(0.75, 1.25))
                if result.retry_in is not None:
                    pause = min(pause, max(result.retry_in, 0.001))
                if not event.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await event.wait()
                event.clear()
                if deadline - time.monotonic() <= 0:
                    continue
                result = await self.state.admit(req)
                if isinstance(result, Admitted):
                    admitted = True
                    return result, time.monotonic() - started
                if isinstance(result, Full):
                    raise _full(req.group, result)
        finally:
            if gone is not None:
                gone.cancel()
            self._events.pop(req.request_id, None)
            self._waiting[req.group].discard(req.request_id)
            if not admitted:
                # Leave the line even when this task is being cancelled (client went away).
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.state.cancel(req.group, req.request_id))

    # -- leases ------------------------------------------------------------------------------
    def hold(self, group: str, deployment_id: str, slot_id: str) -> None:
        """Keep renewing an in-flight slot until `drop`."""
        self._slots[group][slot_id] = deployment_id
        self._ensure_renewer()

    def drop(self, group: str, slot_id: str) -> None:
        self._slots[group].pop(slot_id, None)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        period = self.lease / 3
        while any(self._waiting.values()) or any(self._slots.values()):
            await asyncio.sleep(period)
            for group in list(set(self._waiting) | set(self._slots)):
                waiters = list(self._waiting.get(group, ()))
                slots = [(dep, slot) for slot, dep in self._slots.get(group, {}).items()]
                if not waiters and not slots:
                    self._waiting.pop(group, None)
                    self._slots.pop(group, None)
                    continue
                try:
                    lost = await self.state.renew(group, waiters, slots, self.lease)
                except Exception as exc:  # the next round tries again
                    log.debug("lease renewal failed for %s: %s", group, type(exc).__name__)
                    continue
                for rid in lost:  # ask again at once: it re-enters the line
                    self._wake(rid)

    async def depth(self, group: str) -> list[LineDepth]:
        return await self.state.line(group)


def _full(group: str, full: Full) -> QueueFull:
    retry_after = max(1.0, round(full.retry_in)) if full.retry_in is not None else 1.0
    return QueueFull(
        f"The queue for model group `{group}` is full ({full.depth} waiting); "
        f"retry after {retry_after:.0f}s.",
        retry_after=retry_after,
    )
