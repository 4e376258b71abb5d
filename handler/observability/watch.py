"""The periodic watcher behind the hanging-request and queue-depth alerts.

One task per process, running only while this process has requests in flight (so an idle
gateway, or a frozen Lambda container, runs nothing). Every `check_every` seconds it looks for
requests with no response after `alerting_threshold` seconds (each is reported once) and
samples the queues of every model group for the depth and wait thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from router.observe.alerts import Alerter
from router.observe.settings import AlertSettings

if TYPE_CHECKING:
    from handler.observability.context import RequestSlot
    from handler.observability.hub import Observability

log = logging.getLogger("laneway.observe")

__all__ = ["Watcher"]


def _asked(slot: RequestSlot) -> dict[str, Any]:
    """Model and priority from the captured request body (parsed only for an alert)."""
    with contextlib.suppress(Exception):
        body = orjson.loads(b"".join(slot.request_body))
        if isinstance(body, dict):
            return {"model": body.get("model"), "priority": body.get("priority")}
    return {}


class Watcher:
    def __init__(self, hub: Observability, alerter: Alerter, settings: AlertSettings) -> None:
        self.hub = hub
        self.alerter = alerter
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def kick(self) -> None:
        task = self._task
        if task is not None and not task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        every = self.settings.check_every
        while self.hub.inflight:
            await asyncio.sleep(every)
            try:
                self._check_hanging()
                if self.settings.queue_depth or self.settings.queue_wait:
                    lines = await self.hub.sample_queues(timeout=max(every, 0.5))
                    if lines:
                        self.alerter.check_queues(lines)
            except Exception:  # a broken check must not stop the watcher
                log.exception("alert check failed")

    def _check_hanging(self) -> None:
        now = time.monotonic()
        limit = self.settings.hanging_after
        for slot in list(self.hub.inflight):
            waited = now - slot.started
            if slot.alerted or waited < limit:
                continue
            slot.alerted = True
            self.alerter.check_hanging({
                "request_id": slot.request_id(), "path": slot.scope.get("path"),
                **_asked(slot), "no_response_for_seconds": round(waited, 1),
                "threshold_seconds": limit,
            })
