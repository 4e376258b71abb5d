"""Single-flight: of identical concurrent requests (one cache digest), one calls upstream.

The first caller takes a lock with a lease and renews it while it works; the others wait to
hear that the entry is finished (the store's announcement, `Waiters.wake`) and look again. A
leader that crashed stops renewing, its lease runs out, and the next look-up of a follower
takes the lead: nobody is stranded. A follower's wait ends at its own deadline (408) or when
its client leaves (499).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from router.cache.store import Begin, CacheStore
from router.errors import ClientDisconnected, RequestTimeout

log = logging.getLogger("laneway.cache")

__all__ = ["Lead", "Waiters", "acquire"]

POLL = 1.0
"""Longest wait between look-ups: the safety net should an announcement be lost."""


class Waiters:
    """This process's followers, by digest."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def wake(self, digest: str) -> None:
        for event in self._events.get(digest, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, digest: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(digest, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(digest)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[digest]


async def acquire(
    store: CacheStore, waiters: Waiters, digest: str, token: str, lease: float,
    deadline: float, abandoned: Callable[[], Awaitable[None]] | None,
    joined: Callable[[], None] = lambda: None,
) -> Begin:
    """A hit or the lead (or, with `lease` 0, a hit or nothing); `joined()` is called when
    this caller starts waiting for another's call."""
    waited = False
    gone: asyncio.Future[None] | None = None
    try:
        with waiters.watch(digest) as event:
            while True:
                event.clear()  # before the look-up: an announcement after it is not missed
                got = await store.begin(digest, token, lease)
                if got.value is not None or got.lead or lease <= 0:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(
                        "Request timed out waiting for an identical request's answer.")
                if not waited:
                    waited = True
                    joined()
                if gone is None and abandoned is not None:
                    gone = asyncio.ensure_future(abandoned())
                    gone.add_done_callback(lambda _: event.set())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(),
                                           min(remaining, POLL, max(got.wait, 0.0) + 0.005))
                if gone is not None and gone.done():
                    raise ClientDisconnected(
                        "The client left while waiting for an identical request's answer.")
    finally:
        if gone is not None and not gone.done():
            gone.cancel()


class Lead:
    """The lock of the one caller computing an entry: renewed until `finish`."""

    def __init__(self, store: CacheStore, digest: str, token: str, lease: float,
                 deadline: float) -> None:
        self.store, self.digest, self.token, self.lease = store, digest, token, lease
        self.deadline = deadline
        """Renewals stop here even if `finish` is never called (a stream nobody read)."""
        self._renewer = asyncio.get_running_loop().create_task(self._renew())
        self.done = False

    async def _renew(self) -> None:
        while time.monotonic() < self.deadline:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self.store.renew(self.digest, self.token, self.lease):
                    return  # lost (expired under a stalled loop): the next leader has it
            except Exception as exc:  # the store is away: the lease runs out by itself
                log.debug("cache lease renewal failed: %s", exc)

    async def finish(self, value: bytes | None, ttl: float) -> bool:
        """Store `value` (None: nothing) and let followers go; True when stored."""
        if self.done:
            return False
        self.done = True
        self._renewer.cancel()
        return await finish(self.store, self.digest, self.token, value, ttl)


async def finish(store: CacheStore, digest: str, token: str, value: bytes | None,
                 ttl: float) -> bool:
    """Store and announce, never failing the request it follows: a store that is away loses
    the entry, not the answer."""
    try:
        await asyncio.shield(store.finish(digest, token, value, ttl))
    except Exception as exc:
        log.warning("storing a cache entry failed (%s)", type(exc).__name__)
        return False
    return value is not None
