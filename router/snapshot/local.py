"""What this instance saw of its own finished requests, for the dashboard, plus its heartbeat.

Shared state holds no latency distribution and no count of 429 or 408 answers, and a counter
there would cost a Redis round trip per request. These numbers are therefore per instance and
the snapshot labels them so ("this_instance"). Each finished request costs a few deque appends.

The heartbeat that lets every instance list the fleet (`StateBackend.seen`) rides on finished
requests too: at most one call per `BEAT` seconds, in a background task the request never waits
for, so an instance that serves traffic is listed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from router.records import CallRecord

if TYPE_CHECKING:
    from router.state.base import StateBackend

__all__ = ["BEAT", "SEEN_WINDOW", "LocalStats", "instance_name"]

log = logging.getLogger("laneway.snapshot")

WINDOW = 60.0
"""Seconds the per-instance counts and percentiles cover."""
BEAT = 10.0
SEEN_WINDOW = 60.0
"""An instance counts as seen while its last heartbeat is younger than this."""
_KEEP = 4096
"""Samples kept per group or deployment: bounds memory at any request rate."""


def instance_name(env: Mapping[str, str]) -> str:
    """This process, unique in the fleet: a Lambda container's log stream, else host and pid."""
    stream = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
    return stream or f"{socket.gethostname()}:{os.getpid()}"


class LocalStats:
    def __init__(self, state: StateBackend, instance: str) -> None:
        self.state = state
        self.instance = instance
        # group -> (time, status); deployment id -> (time, upstream seconds, failed)
        self._answers: dict[str, deque[tuple[float, int]]] = {}
        self._calls: dict[str, deque[tuple[float, float, bool]]] = {}
        self._last_beat = -BEAT
        self._beats: set[asyncio.Task[Any]] = set()

    def observe(self, record: CallRecord) -> None:
        """The engine observer (router.observers)."""
        now = time.monotonic()
        group = record.model_group or record.model
        self._answers.setdefault(group, deque(maxlen=_KEEP)).append((now, record.status))
        if record.deployment_id and not record.cache_hit:
            failed = record.status >= 500
            self._calls.setdefault(record.deployment_id, deque(maxlen=_KEEP)).append(
                (now, record.upstream_seconds, failed))
        if now - self._last_beat >= BEAT:
            self.beat(now)

    def beat(self, now: float | None = None) -> None:
        self._last_beat = time.monotonic() if now is None else now
        try:
            task = asyncio.get_running_loop().create_task(
                self.state.seen(self.instance, SEEN_WINDOW))
        except RuntimeError:  # no loop (a synchronous caller): the next request beats
            return
        self._beats.add(task)
        task.add_done_callback(self._beat_done)

    def _beat_done(self, task: asyncio.Task[Any]) -> None:
        self._beats.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("heartbeat failed: %s", type(task.exception()).__name__)

    def group(self, name: str) -> dict[str, int]:
        """Answers of the last minute: served, 429s, 408s, other errors."""
        edge = time.monotonic() - WINDOW
        out = {"answered": 0, "rate_limited": 0, "timed_out": 0, "errors": 0}
        for t, status in self._answers.get(name, ()):
            if t <= edge:
                continue
            out["answered"] += 1
            if status == 429:
                out["rate_limited"] += 1
            elif status == 408:
                out["timed_out"] += 1
            elif status >= 400:
                out["errors"] += 1
        return out

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """Calls of the last minute that ended on this deployment: latency p50/p95 of the
        successful ones and the share that failed upstream."""
        edge = time.monotonic() - WINDOW
        calls = [(s, failed) for t, s, failed in self._calls.get(deployment_id, ()) if t > edge]
        ok = sorted(s for s, failed in calls if not failed)
        return {
            "calls": len(calls),
            "latency_p50_ms": _ms(_quantile(ok, 0.5)),
            "latency_p95_ms": _ms(_quantile(ok, 0.95)),
            "error_rate": round(sum(f for _, f in calls) / len(calls), 3) if calls else None,
        }


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
