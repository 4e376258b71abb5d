"""`Observability`: where finished requests turn into a log line, metrics, alerts and callbacks.

Registered as an engine observer (`router.observers`) and a Redis timing observer
(`router.state_observers`). Per request it costs one log line, a few metric updates, a few
alert comparisons and, when callbacks are on, one deque append; everything that does I/O
(callbacks, Slack) happens later in background tasks, or in `flush()` on Lambda.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from handler.observability.context import CURRENT, RequestSlot
from router.observe.fields import Finished, ms, record_fields
from router.observe.sender import BatchSender
from router.observe.settings import ObserveSettings
from router.records import CallRecord
from router.router import Router

__all__ = ["Observability"]

log = logging.getLogger("laneway.observe")
QUEUE_SAMPLE_SECONDS = 60.0
"""On Lambda (EMF), how often an invocation also samples queue depth."""

RecordSink = Callable[[CallRecord, float, "float | None"], None]


def _write_and_flush(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def _instance_name(env: Any) -> str:
    return (env.get("AWS_LAMBDA_FUNCTION_NAME") or env.get("K_REVISION")
            or socket.gethostname())


class Observability:
    def __init__(self, router: Router, settings: ObserveSettings) -> None:
        self.router = router
        self.settings = s = settings
        self.inflight: set[RequestSlot] = set()
        self.request_log = logging.getLogger("laneway.request")
        self.prometheus: Any = None
        self.emf: Any = None
        sinks: list[RecordSink] = []
        state_sinks: list[Callable[[str, float, BaseException | None], None]] = []
        if s.prometheus:
            from router.observe.prometheus import PrometheusMetrics

            self.prometheus = PrometheusMetrics(lambda: len(self.inflight))
            sinks.append(self.prometheus.on_record)
            state_sinks.append(self.prometheus.on_state)
        if s.emf:
            from router.observe.emf import EmfMetrics

            # On Lambda, stdout is flushed once per invocation (flush()); elsewhere per line.
            self.emf = EmfMetrics(s.emf_namespace, sys.stdout.write if s.on_lambda
                                  else _write_and_flush, sys.stdout.flush)
            sinks.append(self.emf.on_record)
            state_sinks.append(self.emf.on_state)
        self._senders: dict[str, BatchSender[Any]] = {}
        for name, target in (("langfuse", s.langfuse), ("webhook", s.webhook)):
            if target is not None:
                self._senders[name] = BatchSender(name, target.encode, batch_size=s.batch_size,
                                                  interval=s.flush_interval)
        self._on_success = [self._senders[n] for n in sorted(s.success) if n in self._senders]
        self._on_failure = [self._senders[n] for n in sorted(s.failure) if n in self._senders]
        self.alerter: Any = None
        self.watcher: Any = None
        if s.alerts is not None:
            from handler.observability.watch import Watcher
            from router.observe.alerts import Alerter, slack_delivery

            slack: BatchSender[str] = BatchSender("slack", slack_delivery(s.alerts.slack_url),
                                                  batch_size=10, interval=0.2)
            self._senders["slack"] = slack
            self.alerter = Alerter(s.alerts, slack.add,
                                   source=_instance_name(router.config.env))
            self.watcher = Watcher(self, self.alerter, s.alerts)
            state_sinks.append(self.alerter.check_state)
        self._sinks = tuple(sinks)
        self._state_sinks = tuple(state_sinks)
        self.capture_response = bool((self._on_success or self._on_failure) and s.log_content)
        # Request bodies are also kept for alerts (a hanging request's model and priority).
        self.capture = self.capture_response or self.alerter is not None
        self._last_queue_sample = 0.0
        router.observers.append(self.observe)
        if self.alerter is not None:
            router.budget_observers.append(self.alerter.check_soft_budget)
        if state_sinks:
            router.state_observers.append(self.on_state)

    # -- the request path ------------------------------------------------------------------
    def begin(self, slot: RequestSlot) -> None:
        self.inflight.add(slot)
        if self.request_log.isEnabledFor(logging.DEBUG):
            self.request_log.debug("request started", extra={"fields": {
                "request_id": slot.request_id(), "path": slot.scope.get("path")}})
        if self.watcher is not None:
            self.watcher.kick()

    def observe(self, record: CallRecord) -> None:
        """The engine observer: one finished request (success, failure, or client gone)."""
        slot = CURRENT.get()
        if slot is not None:
            slot.record = record
            duration = time.monotonic() - slot.started
        else:
            duration = record.queue_seconds + record.upstream_seconds
        overhead = None
        if slot is not None and record.status < 400:
            overhead = max(0.0, duration - record.queue_seconds - record.upstream_seconds)
        metric_overhead = overhead if record.retries == 0 else None
        for sink in self._sinks:
            sink(record, duration, metric_overhead)
        if self.alerter is not None:
            self.alerter.check_record(record)
        senders = self._on_success if record.status < 400 else self._on_failure
        if not senders and not self.request_log.isEnabledFor(logging.INFO):
            return
        fields = record_fields(record, duration=duration, overhead=overhead)
        self._log(fields)
        if senders:
            item = Finished(record, fields, slot.started_at if slot else time.time() - duration,
                            time.time())
            if slot is not None:
                slot.finished = item  # sent when the response is complete (see end())
            else:
                for sender in senders:
                    sender.add(item)

    def on_state(self, operation: str, seconds: float, error: BaseException | None) -> None:
        for sink in self._state_sinks:
            sink(operation, seconds, error)

    def end(self, slot: RequestSlot) -> None:
        """The middleware's last word on a request: its response is complete, or it failed."""
        self.inflight.discard(slot)
        item = slot.finished
        if item is not None:
            if self.capture_response:
                item.request_body = b"".join(slot.request_body)
                item.response_body = slot.response_body
            for sender in (self._on_success if item.success else self._on_failure):
                sender.add(item)
        elif slot.record is None and self.request_log.isEnabledFor(logging.INFO):
            # No engine record: refused before the engine saw it (auth, bad JSON, unknown
            # route), a non-inference POST, or the client left before it was parsed.
            self._log({"request_id": slot.request_id(), "path": slot.scope.get("path"),
                       "status": slot.status or 500,
                       "duration_ms": ms(time.monotonic() - slot.started)})

    def _log(self, fields: dict[str, Any]) -> None:
        """The per-request line at INFO. Built with makeRecord + handle, which skips the
        caller lookup `Logger.info` does (a stack walk on every request)."""
        logger = self.request_log
        if logger.isEnabledFor(logging.INFO):
            logger.handle(logger.makeRecord(logger.name, logging.INFO, "laneway", 0, "request",
                                            (), None, extra={"fields": fields}))

    # -- outside the request path ----------------------------------------------------------
    async def sample_queues(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """Queue depth per group and priority from the state backend, or None if it fails."""
        try:
            async with asyncio.timeout(timeout):
                lines = await self.router.queue_status()
        except Exception as exc:
            log.debug("queue sample failed: %s", type(exc).__name__)
            return None
        if self.prometheus is not None:
            try:  # the fair-share tenants of the groups with a line (bounded labels)
                async with asyncio.timeout(timeout):
                    shares = await self.router.tenant_shares(lines)
            except Exception as exc:
                log.debug("fair-share sample failed: %s", type(exc).__name__)
                shares = {}
            self.prometheus.set_queues(lines, shares)
        return lines

    async def flush(self, timeout: float = 2.0) -> bool:
        """Deliver everything pending (callbacks, alerts, EMF lines) within `timeout`."""
        if self.emf is not None:
            now = time.monotonic()
            if now - self._last_queue_sample >= QUEUE_SAMPLE_SECONDS:
                self._last_queue_sample = now
                lines = await self.sample_queues(min(timeout / 2, 0.5))
                if lines:
                    self.emf.on_queues(lines)
            self.emf.flush()
        if not self._senders:
            return True
        done = await asyncio.gather(*(s.flush(timeout) for s in self._senders.values()))
        return all(done)

    def flush_blocking(self, timeout: float = 2.0) -> bool:
        """`flush()` from synchronous code that owns the loop (the Lambda handler)."""
        loop = asyncio.get_event_loop()
        return loop.run_until_complete(self.flush(timeout))

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: {"sent": s.sent, "failed": s.failed, "dropped": s.dropped,
                       "pending": s.pending} for name, s in self._senders.items()}
