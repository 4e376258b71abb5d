"""Where cache entries live: Redis (shared by the fleet) or this process (an LRU).

Both keep, per entry digest, the stored response and a single-flight lock with a lease, and
tell listeners when an entry is finished (stored, or its leader gave up), so followers wake at
once instead of polling. In Redis each step is one script (router/state/lua/cache_*.lua) and
the announcement rides the state backend's wake-up channel.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.state.keys import CACHE_PREFIX, WAKE_CHANNEL, CacheKeys

if TYPE_CHECKING:
    from router.state.redis_store import RedisState

__all__ = ["Begin", "CacheStore", "MemoryCacheStore", "RedisCacheStore"]

Listener = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Begin:
    """What a look-up found: `value` (a hit), the lead (`lead`), or someone else's lead with
    `wait` seconds left on its lease (or neither, when the look-up was read-only)."""

    value: bytes | None = None
    lead: bool = False
    wait: float = 0.0


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class CacheStore(Protocol):
    name: str

    async def begin(self, digest: str, token: str, lease: float) -> Begin: ...
    async def finish(self, digest: str, token: str, value: bytes | None, ttl: float
                     ) -> None: ...
    async def renew(self, digest: str, token: str, lease: float) -> bool: ...
    def listen(self, listener: Listener) -> None: ...


class RedisCacheStore:
    """Entries in Redis through a state backend's connection (Cluster safe: one hash tag per
    entry), announced on its wake-up channel."""

    name = "redis"

    def __init__(self, redis: RedisState) -> None:
        self.redis = redis
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)  # subscribed on first use (it needs the event loop)

    async def begin(self, digest: str, token: str, lease: float) -> Begin:
        for listener in self._listeners:  # registered again after a reconnect or a close
            self.redis.listen_for_cache(listener)
        k = CacheKeys.of(digest)
        reply = await self.redis.script("cache_begin", [k.entry, k.lock],
                                        [token, _ms(lease) if lease > 0 else 0])
        kind = int(reply[0])
        if kind == 1:
            value = reply[1]
            return Begin(value=value if isinstance(value, bytes) else str(value).encode())
        if kind == 2:
            return Begin(lead=True)
        left = int(reply[1])
        return Begin(wait=left / 1000 if left > 0 else 0.0)

    async def finish(self, digest: str, token: str, value: bytes | None, ttl: float) -> None:
        k = CacheKeys.of(digest)
        await self.redis.script("cache_finish", [k.entry, k.lock], [
            token, value or b"", _ms(ttl), WAKE_CHANNEL, CACHE_PREFIX + digest])

    async def renew(self, digest: str, token: str, lease: float) -> bool:
        k = CacheKeys.of(digest)
        return bool(await self.redis.script("cache_renew", [k.lock], [token, _ms(lease)]))


class MemoryCacheStore:
    """Entries in this process: least recently used evicted past `max_entries`."""

    name = "local"

    def __init__(self, max_entries: int = 1000, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._locks: dict[str, tuple[str, float]] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _get(self, digest: str, now: float) -> bytes | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        if found[1] <= now:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return found[0]

    async def begin(self, digest: str, token: str, lease: float) -> Begin:
        now = self._clock()
        value = self._get(digest, now)
        if value is not None:
            return Begin(value=value)
        if lease <= 0:
            return Begin()
        lock = self._locks.get(digest)
        if lock is not None and lock[1] > now:
            return Begin(wait=lock[1] - now)
        self._locks[digest] = (token, now + lease)
        return Begin(lead=True)

    async def finish(self, digest: str, token: str, value: bytes | None, ttl: float) -> None:
        if value:
            self._entries[digest] = (value, self._clock() + ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        lock = self._locks.get(digest)
        if lock is not None and lock[0] == token:
            del self._locks[digest]
        for listener in self._listeners:
            asyncio.get_running_loop().call_soon(listener, digest)

    async def renew(self, digest: str, token: str, lease: float) -> bool:
        lock = self._locks.get(digest)
        if lock is None or lock[0] != token:
            return False
        self._locks[digest] = (token, self._clock() + lease)
        return True
