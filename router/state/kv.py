"""A small key-value store with expiry beside the engine's state: stored Responses
conversations, which a follow-up may continue on any instance.

In Redis each value is one key (`keys.stored_response`) with a TTL. The reply that makes a value
usually writes it in its attempt's release script (`Release.keep`), which costs the request no
round trip of its own; on a Redis Cluster, where the key lives in another slot, and for values
written after the fact, a one-line script sets it on the node owning its slot. In process it
is a dict whose entries expire (the in-process backend's own, where its releases keep). A
fail-open backend keeps values in Redis only: while Redis is away a follow-up cannot be
continued (a 503), which is better than a conversation that exists on one instance and not
another.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.state.redis_store import RedisState

__all__ = ["KeyValue", "MemoryKV", "RedisKV", "kv_for"]

_MEMORY_MAX = 10_000
"""Most values an in-process store keeps; the oldest go first (a process is no archive)."""
_MEMORY_MAX_BYTES = 256 * 1024 * 1024
"""Most bytes of values an in-process store keeps, for the same reason: a few large
conversations must not take the process's memory."""


class KeyValue(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def delete(self, key: str) -> bool: ...


class MemoryKV:
    """Values in insertion order, which is expiry order while the TTL stays the same (one store
    has one TTL): a put drops what has expired, and the oldest beyond the limit, from the
    front, so a full store costs a put O(1) rather than a scan of every value. Full means
    `limit` values or `max_bytes` bytes of them."""

    def __init__(self, limit: int = _MEMORY_MAX, max_bytes: int = _MEMORY_MAX_BYTES) -> None:
        self._values: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            self._drop(key)
            return None
        return found[1]

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.set(key, value, ttl)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) > self._max_bytes:  # could never fit: kept nowhere, nothing dropped
            self._drop(key)
            return
        now = time.monotonic()
        values = self._values
        self._drop(key)
        while values:
            oldest = next(iter(values))
            if (len(values) < self._limit and self._bytes + len(value) <= self._max_bytes
                    and values[oldest][0] > now):
                break
            self._drop(oldest)
        values[key] = (now + ttl, value)
        self._bytes += len(value)

    async def delete(self, key: str) -> bool:
        return self._drop(key)

    def _drop(self, key: str) -> bool:
        found = self._values.pop(key, None)
        if found is None:
            return False
        self._bytes -= len(found[1])
        return True


class RedisKV:
    def __init__(self, state: RedisState) -> None:
        self._state = state

    async def get(self, key: str) -> bytes | None:
        value = await self._state._run("kv_get", [key], [])
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._state._run("kv_put", [key], [value, max(1, round(ttl * 1000))])

    async def delete(self, key: str) -> bool:
        return bool(await self._state._run("kv_delete", [key], []))


def kv_for(state: Any) -> KeyValue:
    """The store beside `state`: in its Redis when it has one, else in process (told apart by
    name, so that a gateway without Redis never imports the Redis client)."""
    primary = getattr(state, "primary", state)  # a fail-open backend's Redis
    if getattr(primary, "name", None) == "redis":
        return RedisKV(primary)
    kept = getattr(state, "kv", None)  # the in-process backend's, where its releases keep
    return kept if isinstance(kept, MemoryKV) else MemoryKV()
