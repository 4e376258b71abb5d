"""Prometheus metrics for `GET /metrics`, fed by finished requests and Redis round trips.

`prometheus_client` is imported when this module is, and this module only when Prometheus
metrics are on, so a Lambda cold start does not pay for it. Each process has its own registry:
with several uvicorn workers every scrape sees one worker (docs/observability.md).
Label children are cached so a request costs dict look-ups and a few `observe()` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import prometheus_client as pc
from prometheus_client.core import GaugeMetricFamily

from router.observe.metric_names import BUCKETS, NAMES, OPERATIONS, Capped
from router.records import CallRecord
from router.state.base import LineDepth, TenantShare

__all__ = ["PrometheusMetrics"]

_GEN_AI = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]


class _Gauges:
    """Values read at scrape time: queue depth per group and priority, requests in flight."""

    def __init__(self, in_flight: Callable[[], int]) -> None:
        self.lines: Mapping[str, Sequence[LineDepth]] = {}
        self.shares: Mapping[str, Sequence[TenantShare]] = {}
        self.in_flight = in_flight

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(NAMES["queue_depth"], "Requests waiting in line.",
                                  labels=["model_group", "priority"])
        oldest = GaugeMetricFamily(NAMES["queue_oldest_wait"],
                                   "How long the oldest waiter has waited.",
                                   labels=["model_group", "priority"])
        for group, lines in self.lines.items():
            for line in lines:
                depth.add_metric([group, str(line.priority)], line.count)
                oldest.add_metric([group, str(line.priority)], line.oldest_wait)
        yield depth
        yield oldest
        waiting = GaugeMetricFamily(NAMES["fair_waiting"],
                                    "Requests waiting in line per fair-share tenant.",
                                    labels=["model_group", "tenant"])
        served = GaugeMetricFamily(NAMES["fair_served_share"],
                                   "A tenant's share of the weighted tokens served in its group "
                                   "since the group was last idle.",
                                   labels=["model_group", "tenant"])
        for group, shares in self.shares.items():
            for t in shares:
                waiting.add_metric([group, t.tenant], t.waiting)
                served.add_metric([group, t.tenant], t.share)
        yield waiting
        yield served
        yield GaugeMetricFamily(NAMES["in_flight"], "Requests in flight in this process.",
                                value=self.in_flight())


class PrometheusMetrics:
    def __init__(self, in_flight: Callable[[], int] = lambda: 0) -> None:
        r = self.registry = pc.CollectorRegistry()
        pc.ProcessCollector(registry=r)
        H, C = pc.Histogram, pc.Counter

        def hist(key: str, doc: str, labels: list[str]) -> Any:
            return H(NAMES[key], doc, labels, buckets=BUCKETS[key], registry=r)

        self.op_duration = hist("operation_duration", "Upstream call duration.",
                                [*_GEN_AI, "error_type"])
        self.tokens = hist("token_usage", "Tokens per request.", [*_GEN_AI, "gen_ai_token_type"])
        self.ttft = hist("time_to_first_token", "Time to the first streamed chunk.", _GEN_AI)
        self.tpot = hist("time_per_output_token", "Time per output token after the first.",
                         _GEN_AI)
        self.duration = hist("request_duration", "Whole request, as the client saw it.",
                             ["model_group"])
        self.overhead = hist("overhead", "Time spent in laneway itself.", [])
        self.queue_wait = hist("queue_wait", "Time queued requests waited in line.",
                               ["model_group", "priority"])
        self.redis = hist("redis_duration", "Redis round trips.", ["operation"])
        self.requests = C(NAMES["requests"], "Finished requests.",
                          ["model_group", "endpoint", "status"], registry=r)
        self.admissions = C(NAMES["admissions"], "Requests given a deployment.",
                            ["model_group", "priority", "queued"], registry=r)
        self.rate_limited = C(NAMES["rate_limited"], "Requests answered 429.",
                              ["model_group", "priority", "reason"], registry=r)
        self.timeouts = C(NAMES["timeouts"], "Requests answered 408.",
                          ["model_group", "priority", "stage"], registry=r)
        self.cooldowns = C(NAMES["cooldowns"], "Deployments put into cooldown.",
                           ["model_group", "deployment_id"], registry=r)
        self.retries = C(NAMES["retries"], "Retried attempts.", ["model_group"], registry=r)
        self.fallbacks = C(NAMES["fallbacks"], "Requests served by a fallback group.",
                           ["from_group", "to_group"], registry=r)
        self.redis_errors = C(NAMES["redis_errors"], "Failed Redis round trips.",
                              ["operation", "error_type"], registry=r)
        self.spend = C(NAMES["spend"], "USD spent, by team and virtual key alias.",
                       ["team", "key_alias"], registry=r)
        self.cache_lookups = C(NAMES["cache_lookups"], "Response cache look-ups.",
                               ["model_group", "result"], registry=r)
        self.cache_stores = C(NAMES["cache_stores"], "Answers stored in the response cache.",
                              ["model_group"], registry=r)
        self.cache_joins = C(NAMES["cache_joins"],
                             "Requests that waited for an identical request's call.",
                             ["model_group"], registry=r)
        self.gauges = _Gauges(in_flight)
        r.register(self.gauges)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._group, self._prio, self._deployment = Capped(), Capped(64), Capped(500)
        self._team, self._alias = Capped(200), Capped(500)

    def _l(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def on_record(self, r: CallRecord, duration: float, overhead: float | None) -> None:
        L = self._l
        group = self._group(r.model_group or "unknown")
        prio = self._prio(str(r.priority))
        L(self.requests, group, r.endpoint, str(r.status)).inc()
        L(self.duration, group).observe(duration)
        if overhead is not None:
            self.overhead.observe(overhead)
        if r.deployment_id:
            L(self.admissions, group, prio, "true" if r.queued else "false").inc()
        if r.queued:
            L(self.queue_wait, group, prio).observe(r.queue_seconds)
        if r.status == 429:
            reason = ("queue_full" if r.error_type == "QueueFull"
                      else "upstream" if r.deployment_id else "no_capacity")
            L(self.rate_limited, group, prio, reason).inc()
        elif r.status == 408:
            L(self.timeouts, group, prio, "upstream" if r.deployment_id else "queue").inc()
        for dep in r.cooldowns:
            L(self.cooldowns, group, self._deployment(dep)).inc()
        if r.retries:
            L(self.retries, group).inc(r.retries)
        if r.fallback_from:
            L(self.fallbacks, self._group(r.fallback_from), group).inc()
        if r.cost > 0:
            # Label sets are capped: past them values are counted under "other".
            L(self.spend, self._team(r.team_id or ""), self._alias(r.key_alias or "")).inc(r.cost)
        if r.cache_key:
            L(self.cache_lookups, group, "hit" if r.cache_hit else "miss").inc()
            if r.cache_stored:
                L(self.cache_stores, group).inc()
            if r.cache_joined:
                L(self.cache_joins, group).inc()
        if not r.provider:
            return
        gen_ai = (OPERATIONS.get(r.endpoint, r.endpoint), r.provider, group)
        if r.upstream_seconds > 0:
            L(self.op_duration, *gen_ai, r.error_type or "").observe(r.upstream_seconds)
        if r.status < 400:
            L(self.tokens, *gen_ai, "input").observe(r.prompt_tokens)
            if r.endpoint != "embed":
                L(self.tokens, *gen_ai, "output").observe(r.completion_tokens)
        ttft = r.time_to_first_token
        if ttft is not None:
            L(self.ttft, *gen_ai).observe(ttft)
            if r.status < 400 and r.completion_tokens > 1 and r.upstream_seconds > ttft:
                per_token = (r.upstream_seconds - ttft) / (r.completion_tokens - 1)
                L(self.tpot, *gen_ai).observe(per_token)

    def on_state(self, operation: str, seconds: float, error: BaseException | None) -> None:
        self._l(self.redis, operation).observe(seconds)
        if error is not None:
            self._l(self.redis_errors, operation, type(error).__name__).inc()

    def set_queues(self, lines: Mapping[str, Sequence[LineDepth]],
                   shares: Mapping[str, Sequence[TenantShare]] | None = None) -> None:
        self.gauges.lines = lines
        self.gauges.shares = shares or {}

    def exposition(self) -> tuple[bytes, str]:
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST
