"""Each instance's short memory of the records its requests looked up.

Misses are remembered too ("no such key"), so a flood of requests with made-up keys costs one
Redis read per distinct key per TTL, not one per request. Bounded: the least recently used
entries go first. Changes made anywhere in the fleet invalidate entries through notices; the
TTL bounds staleness should a notice be lost (a subscription reconnecting).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["RecordCache"]

T = TypeVar("T")
_MISSING = object()


class RecordCache(Generic[T]):
    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, T | None]] = OrderedDict()
        self.generation = 0
        """Counts invalidations. A lookup notes it before reading and passes it to `put`: a
        read that an invalidation overtook is not remembered (it may hold the old record)."""

    def get(self, ident: str) -> tuple[bool, T | None]:
        """(True, record or None) when remembered and fresh; (False, None) otherwise."""
        entry = self._entries.get(ident)
        if entry is None:
            return False, None
        if entry[0] <= time.monotonic():
            del self._entries[ident]
            return False, None
        self._entries.move_to_end(ident)
        return True, entry[1]

    def put(self, ident: str, record: T | None, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        self._entries[ident] = (time.monotonic() + self.ttl, record)
        self._entries.move_to_end(ident)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, ident: str) -> None:
        self.generation += 1
        self._entries.pop(ident, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
