"""Redis round trips, timed: the source of the Redis latency metric and the unreachable alert.

`TimedRedisState` is the Redis backend with one stopwatch around the one place every script's
answer is awaited (`_answer`) and around `ping`. Each finished round trip is reported to the
observers as `(operation, seconds, error)`; `error` is None on success. A cancelled call (the
client went away) is not a measurement and is not reported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from router.state.redis_store import RedisState

log = logging.getLogger("laneway.observe")

__all__ = ["StateObserver", "TimedRedisState"]

StateObserver = Callable[[str, float, BaseException | None], None]


class TimedRedisState(RedisState):
    def __init__(self, url: str, observers: list[StateObserver], **kw: Any) -> None:
        super().__init__(url, **kw)
        self.observers = observers
        """Shared with the `Router`, so observers added after construction are seen."""

    def _report(self, operation: str, seconds: float, error: BaseException | None) -> None:
        for observer in self.observers:
            try:
                observer(operation, seconds, error)
            except Exception:  # measuring must never break a request
                log.exception("state observer failed")

    async def _answer(self, name: str, reply: Awaitable[Any], started: float) -> Any:
        try:
            result = await super()._answer(name, reply, started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report(name, time.perf_counter() - started, exc)
            raise
        self._report(name, time.perf_counter() - started, None)
        return result

    async def ping(self) -> None:
        started = time.perf_counter()
        try:
            await super().ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report("ping", time.perf_counter() - started, exc)
            raise
        self._report("ping", time.perf_counter() - started, None)
