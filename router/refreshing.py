"""Credentials that expire (an assumed role's keys, an Entra ID token), fetched once however
many callers need them at the same moment (single-flight) and kept until shortly before they
expire. One per process and kind of credential; the values are never written anywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Refreshing"]

T = TypeVar("T")


class Refreshing(Generic[T]):
    def __init__(self, margin: float = 300.0) -> None:
        self._margin = margin
        """Seconds before expiry at which a value is fetched again."""
        self._values: dict[Hashable, tuple[T, float]] = {}
        self._inflight: dict[Hashable, asyncio.Future[T]] = {}

    def clear(self) -> None:
        self._values.clear()

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        """The value for `key`; `fetch` returns (value, expiry as epoch seconds)."""
        held = self._values.get(key)
        if held is not None and held[1] - self._margin > time.time():
            return held[0]
        pending = self._inflight.get(key)
        if pending is None or pending.done():
            pending = asyncio.ensure_future(self._fetch(key, fetch))
            self._inflight[key] = pending
        # shield: a caller that gives up must not cancel the call the others wait for.
        return await asyncio.shield(pending)

    async def _fetch(self, key: Hashable,
                     fetch: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        try:
            value, expiry = await fetch()
        finally:
            self._inflight.pop(key, None)
        self._values[key] = (value, expiry)
        return value
