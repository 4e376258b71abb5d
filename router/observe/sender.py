"""Background, batched delivery of callback payloads over HTTP.

`add()` is what the request path pays: one deque append (and, when no delivery task is running
on this event loop, starting one). The task gathers items for up to `interval` seconds or until
`batch_size` are waiting, encodes one request for the batch, and posts it, retrying a few times
with backoff on connection errors, 429 and 5xx. It ends when nothing is left, so an idle gateway
runs no task. A receiver that is down never slows or fails a request: past `max_pending` the
oldest items are dropped (and counted). `flush()` delivers everything now (Lambda calls it
before an invocation returns, because a frozen container runs no background task).

Never logs a target URL or header: Slack and webhook URLs carry secrets in their paths.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("laneway.callbacks")

__all__ = ["BatchSender", "Delivery"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP POST: where, what, and with which headers."""

    url: str = field(repr=False)
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


class BatchSender(Generic[T]):
    def __init__(
        self,
        name: str,
        encode: Callable[[list[T]], Delivery],
        *,
        batch_size: int = 50,
        interval: float = 1.0,
        max_pending: int = 10_000,
        timeout: float = 5.0,
        attempts: int = 3,
    ) -> None:
        self.name = name
        self.encode = encode
        self.batch_size = max(1, batch_size)
        self.interval = interval
        self.max_pending = max_pending
        self.timeout = timeout
        self.attempts = attempts
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._pending: collections.deque[T] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._hurry = False
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, item: T) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(item)
        self._kick()

    def _kick(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next flush delivers it
            return
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._drain())
        elif len(self._pending) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def _drain(self) -> None:
        wake = self._wake
        assert wake is not None
        while self._pending:
            if len(self._pending) < self.batch_size and not self._hurry:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await wake.wait()
            wake.clear()
            count = min(self.batch_size, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            await self._deliver(batch)

    def _http(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            import httpx

            self._client_loop = loop
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def _deliver(self, batch: list[T]) -> None:
        try:
            delivery = self.encode(batch)
        except Exception:
            log.exception("%s: could not encode %d callback item(s); dropped", self.name,
                          len(batch))
            self.failed += len(batch)
            return
        status: int | str = "no attempt"
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(0.25 * 2 ** (attempt - 1))
            try:
                response = await self._http().post(delivery.url, content=delivery.body,
                                                   headers=dict(delivery.headers))
            except Exception as exc:  # connection refused, timeout, ...
                status = type(exc).__name__
                continue
            status = response.status_code
            if response.status_code < 300 or response.status_code == 207:
                self.sent += len(batch)
                log.debug("%s: delivered %d item(s) (%d bytes, status %d)", self.name,
                          len(batch), len(delivery.body), response.status_code)
                self._check_partial(response)
                return
            if response.status_code != 429 and response.status_code < 500:
                break  # the receiver rejects this payload: retrying will not change that
        self.failed += len(batch)
        log.warning("%s: delivery of %d item(s) failed (%s); dropped", self.name, len(batch),
                    status)

    def _check_partial(self, response: Any) -> None:
        """Langfuse answers 207 with per-event errors; report them (without payloads)."""
        if response.status_code != 207:
            return
        with contextlib.suppress(Exception):
            errors = response.json().get("errors") or []
            if errors:
                log.warning("%s: receiver rejected %d event(s): %s", self.name, len(errors),
                            "; ".join(str(e.get("message") or e.get("status"))
                                      for e in errors[:3]))

    async def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything pending now. False when `timeout` ran out first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._hurry = True
        try:
            while self._pending or (self._task is not None and not self._task.done()
                                    and self._loop is loop):
                self._kick()
                if self._wake is not None:
                    self._wake.set()
                remaining = deadline - loop.time()
                if remaining <= 0 or self._task is None:
                    return False
                await asyncio.wait({self._task}, timeout=remaining)
            return True
        finally:
            self._hurry = False

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
