"""Slack alerts: the rules that raise them and the rate limit that keeps a storm to one message
per kind per window.

Kinds: `hanging_request`, `slow_response`, `deployment_cooldown`, `queue_depth`, `queue_wait`,
`redis_unreachable`, `soft_budget` (per key or team). Checks on finished requests are a few
comparisons (they run on the request path); hanging requests and queue depth are checked by
the gateway's periodic watcher.
The rate limit is per process: N instances in an outage send up to N messages per window.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from router.errors import ServiceUnavailable
from router.observe.sender import Delivery
from router.observe.settings import AlertSettings
from router.records import CallRecord
from router.state.base import LineDepth

__all__ = ["KINDS", "Alerter", "slack_delivery"]

log = logging.getLogger("laneway.alerts")

KINDS = {
    "hanging_request": "Request hanging",
    "slow_response": "Slow response",
    "deployment_cooldown": "Deployment in cooldown",
    "queue_depth": "Queue too deep",
    "queue_wait": "Queue wait too long",
    "redis_unreachable": "Redis unreachable",
    "soft_budget": "Soft budget crossed",
}


def slack_delivery(url: str) -> Callable[[list[str]], Delivery]:
    """Encode a batch of alert texts as one Slack incoming-webhook message."""
    def encode(batch: list[str]) -> Delivery:
        return Delivery(url, orjson.dumps({"text": "\n\n".join(batch)}),
                        {"content-type": "application/json"})

    return encode


class Alerter:
    def __init__(
        self,
        settings: AlertSettings,
        send: Callable[[str], None],
        *,
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._send = send
        self._source = source
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()

    def alert(self, kind: str, details: Mapping[str, Any]) -> bool:
        """Send one alert unless this kind already went out within the window."""
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.settings.window:
            self._suppressed[kind] += 1
            log.debug("alert %s held back (one per %gs)", kind, self.settings.window)
            return False
        self._last[kind] = now
        title = KINDS.get(kind.split(":", 1)[0], kind)
        lines = [f":rotating_light: *laneway: {title}* (`{kind}`)"]
        lines += [f"• {name}: `{value}`" for name, value in details.items() if value is not None]
        if self._source:
            lines.append(f"• instance: `{self._source}`")
        skipped = self._suppressed.pop(kind, 0)
        if skipped:
            lines.append(f"_{skipped} more like this in the last "
                         f"{self.settings.window:g}s were not sent._")
        self._send("\n".join(lines))
        log.info("alert %s raised", kind)
        return True

    # -- rules ---------------------------------------------------------------------------------
    def check_soft_budget(self, r: CallRecord) -> None:
        for who in r.soft_budget_crossed:  # once per key or team and budget period
            self.alert(f"soft_budget:{who}:{r.team_id if who == 'team' else r.key_alias}", {
                "who": who, "key_alias": r.key_alias, "team_id": r.team_id,
                "request_id": r.request_id})

    def check_record(self, r: CallRecord) -> None:
        s = self.settings
        if r.cooldowns:
            self.alert("deployment_cooldown", {
                "model_group": r.model_group, "deployments": ", ".join(r.cooldowns),
                "after": r.error_type, "request_id": r.request_id})
        if s.slow_after and r.upstream_seconds > s.slow_after:
            self.alert("slow_response", {
                "model_group": r.model_group, "deployment_id": r.deployment_id,
                "upstream_seconds": round(r.upstream_seconds, 2),
                "threshold_seconds": s.slow_after, "request_id": r.request_id})
        if s.queue_wait and r.queue_seconds > s.queue_wait:
            self.alert("queue_wait", {
                "model_group": r.model_group, "priority": r.priority,
                "waited_seconds": round(r.queue_seconds, 2),
                "threshold_seconds": s.queue_wait, "request_id": r.request_id})

    def check_state(self, operation: str, seconds: float, error: BaseException | None) -> None:
        if isinstance(error, ServiceUnavailable):
            self.alert("redis_unreachable", {
                "operation": operation, "failed_after_seconds": round(seconds, 3)})

    def check_queues(self, lines: Mapping[str, Sequence[LineDepth]]) -> None:
        s = self.settings
        for group, depth in lines.items():
            waiting = sum(d.count for d in depth)
            oldest = max((d.oldest_wait for d in depth), default=0.0)
            if s.queue_depth and waiting >= s.queue_depth:
                self.alert("queue_depth", {"model_group": group, "waiting": waiting,
                                           "threshold": s.queue_depth})
            if s.queue_wait and oldest > s.queue_wait:
                self.alert("queue_wait", {"model_group": group,
                                          "oldest_wait_seconds": round(oldest, 1),
                                          "threshold_seconds": s.queue_wait})

    def check_hanging(self, details: Mapping[str, Any]) -> None:
        self.alert("hanging_request", details)
