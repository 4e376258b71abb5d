"""The metrics as CloudWatch Embedded Metric Format (EMF) lines, for AWS Lambda.

CloudWatch Logs turns each EMF line printed on stdout into metrics, with no agent and no API
call. Names match the Prometheus ones (docs/observability.md), except that token usage is two
metrics, `gen_ai_client_token_usage_input` and `..._output`, since an EMF line holds one value
set per dimension set. One line per finished request; Redis round trips are collected and
written as value arrays by `flush()` (at the end of each Lambda invocation), together with the
queue depth when the gateway sampled it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from router.observe.metric_names import NAMES, OPERATIONS, Capped
from router.records import CallRecord
from router.state.base import LineDepth

__all__ = ["EmfMetrics"]

_S, _N = "Seconds", "Count"
_MAX_VALUES = 100  # EMF's limit per metric per line


class EmfMetrics:
    def __init__(self, namespace: str, write: Callable[[str], Any],
                 flush_output: Callable[[], Any] = lambda: None) -> None:
        self.namespace = namespace
        self._write = write
        self._flush_output = flush_output
        self._redis: dict[str, list[float]] = collections.defaultdict(list)
        self._redis_errors: collections.Counter[str] = collections.Counter()
        self._group, self._prio = Capped(), Capped(64)

    def _line(self, dims: dict[str, str], sets: list[tuple[list[str], list[tuple[str, str]]]],
              values: dict[str, Any]) -> None:
        directives = [
            {"Namespace": self.namespace, "Dimensions": [names],
             "Metrics": [{"Name": n, "Unit": u} for n, u in metrics]}
            for names, metrics in sets if metrics
        ]
        doc = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives},
               **dims, **values}
        self._write(orjson.dumps(doc).decode() + "\n")

    def on_record(self, r: CallRecord, duration: float, overhead: float | None) -> None:
        group = self._group(r.model_group or "unknown")
        dims = {"model_group": group, "priority": self._prio(str(r.priority)),
                "status": str(r.status)}
        by_group: list[tuple[str, str]] = [(NAMES["request_duration"], _S)]
        by_prio: list[tuple[str, str]] = []
        v: dict[str, Any] = {NAMES["requests"]: 1, NAMES["request_duration"]: duration,
                             "request_id": r.request_id, "endpoint": r.endpoint}
        if overhead is not None:
            by_group.append((NAMES["overhead"], _S))
            v[NAMES["overhead"]] = overhead
        if r.deployment_id:
            by_prio.append((NAMES["admissions"], _N))
            v[NAMES["admissions"]] = 1
        if r.queued:
            by_prio.append((NAMES["queue_wait"], _S))
            v[NAMES["queue_wait"]] = r.queue_seconds
        if r.status in (429, 408):
            name = NAMES["rate_limited" if r.status == 429 else "timeouts"]
            by_prio.append((name, _N))
            v[name] = 1
        for key, value in (("cooldowns", len(r.cooldowns)), ("retries", r.retries)):
            if value:
                by_group.append((NAMES[key], _N))
                v[NAMES[key]] = value
        if r.provider:
            v["gen_ai_operation_name"] = OPERATIONS.get(r.endpoint, r.endpoint)
            v["gen_ai_provider_name"] = r.provider
            if r.upstream_seconds > 0:
                by_group.append((NAMES["operation_duration"], _S))
                v[NAMES["operation_duration"]] = r.upstream_seconds
            if r.status < 400:
                for side, n in (("input", r.prompt_tokens), ("output", r.completion_tokens)):
                    if side == "output" and r.endpoint == "embed":
                        continue
                    name = f"{NAMES['token_usage']}_{side}"
                    by_group.append((name, _N))
                    v[name] = n
            ttft = r.time_to_first_token
            if ttft is not None:
                by_group.append((NAMES["time_to_first_token"], _S))
                v[NAMES["time_to_first_token"]] = ttft
                if r.status < 400 and r.completion_tokens > 1 and r.upstream_seconds > ttft:
                    name = NAMES["time_per_output_token"]
                    by_group.append((name, _S))
                    v[name] = (r.upstream_seconds - ttft) / (r.completion_tokens - 1)
        sets = [(["model_group"], by_group),
                (["model_group", "status"], [(NAMES["requests"], _N)]),
                (["model_group", "priority"], by_prio)]
        self._line(dims, sets, v)

    def on_state(self, operation: str, seconds: float, error: BaseException | None) -> None:
        values = self._redis[operation]
        values.append(seconds)
        if error is not None:
            self._redis_errors[operation] += 1
        if len(values) >= _MAX_VALUES:
            self._write_redis(operation)

    def _write_redis(self, operation: str) -> None:
        values = self._redis.pop(operation, [])
        errors = self._redis_errors.pop(operation, 0)
        metrics = [(NAMES["redis_duration"], _S)]
        v: dict[str, Any] = {NAMES["redis_duration"]: values}
        if errors:
            metrics.append((NAMES["redis_errors"], _N))
            v[NAMES["redis_errors"]] = errors
        self._line({"operation": operation}, [(["operation"], metrics)], v)

    def on_queues(self, lines: Mapping[str, Sequence[LineDepth]]) -> None:
        for group, depth in lines.items():
            for line in depth:
                self._line(
                    {"model_group": self._group(group), "priority": self._prio(str(line.priority))},
                    [(["model_group", "priority"], [(NAMES["queue_depth"], _N),
                                                     (NAMES["queue_oldest_wait"], _S)])],
                    {NAMES["queue_depth"]: line.count,
                     NAMES["queue_oldest_wait"]: line.oldest_wait},
                )

    def flush(self) -> None:
        for operation in list(self._redis):
            self._write_redis(operation)
        self._flush_output()
