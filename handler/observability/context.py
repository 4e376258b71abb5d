"""The gateway's view of one HTTP request in progress, reachable from anywhere in its task.

The observability middleware opens a `RequestSlot` for each POST and puts it in a context
variable; the engine's observer (which runs in the same task, or in a task copied from it) finds
it there to learn when the request arrived, and `overhead_ms()` uses it for the response header.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from router.observe.fields import Finished
from router.records import CallRecord

__all__ = ["CURRENT", "RequestSlot", "overhead_ms"]


class RequestSlot:
    __slots__ = ("alerted", "finished", "record", "request_body", "response_body", "scope",
                 "started", "started_at", "status")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.started = time.monotonic()
        self.started_at = time.time()
        self.scope = scope
        self.status: int | None = None
        self.record: CallRecord | None = None
        self.finished: Finished | None = None
        """Set by the engine observer when callbacks want this request."""
        self.request_body: list[bytes] = []
        self.response_body: list[bytes] = []
        self.alerted = False

    def request_id(self) -> str | None:
        state = self.scope.get("state") or {}
        if state.get("request_id"):
            return str(state["request_id"])
        for name, value in self.scope.get("headers") or ():
            if name == b"x-request-id":
                return value.decode("latin-1")
        return None


CURRENT: contextvars.ContextVar[RequestSlot | None] = contextvars.ContextVar(
    "laneway_request", default=None)


def overhead_ms(record: CallRecord) -> float | None:
    """Milliseconds this request spent in laneway itself so far: since it arrived, minus its
    wait in line and its upstream call (for a stream still running: up to the first chunk)."""
    slot = CURRENT.get()
    if slot is None:
        return None
    upstream = record.upstream_seconds or record.time_to_first_token or 0.0
    spent = time.monotonic() - slot.started - record.queue_seconds - upstream
    return max(0.0, spent) * 1000
