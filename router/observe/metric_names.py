"""Metric names and buckets shared by the Prometheus exposition and the CloudWatch EMF lines.

The `gen_ai_*` names are the OpenTelemetry GenAI semantic-convention metrics as Prometheus
spells them (`gen_ai.client.operation.duration` in seconds → `..._duration_seconds`); their
buckets are the conventions' advisory boundaries. `laneway_*` are laneway's own.
"""

from __future__ import annotations

__all__ = ["BUCKETS", "NAMES", "OPERATIONS", "Capped"]

OPERATIONS = {"chat": "chat", "text": "text_completion", "embed": "embeddings"}
"""Laneway endpoint → OpenTelemetry `gen_ai.operation.name`."""

NAMES = {
    "operation_duration": "gen_ai_client_operation_duration_seconds",
    "token_usage": "gen_ai_client_token_usage",
    "time_to_first_token": "gen_ai_server_time_to_first_token_seconds",
    "time_per_output_token": "gen_ai_server_time_per_output_token_seconds",
    "requests": "laneway_requests_total",
    "request_duration": "laneway_request_duration_seconds",
    "overhead": "laneway_overhead_seconds",
    "admissions": "laneway_admissions_total",
    "queue_wait": "laneway_queue_wait_seconds",
    "queue_depth": "laneway_queue_depth",
    "queue_oldest_wait": "laneway_queue_oldest_wait_seconds",
    "fair_waiting": "laneway_fair_share_waiting",
    "fair_served_share": "laneway_fair_share_served_ratio",
    "rate_limited": "laneway_rate_limited_total",
    "timeouts": "laneway_timeouts_total",
    "cooldowns": "laneway_deployment_cooldowns_total",
    "retries": "laneway_retries_total",
    "fallbacks": "laneway_fallbacks_total",
    "in_flight": "laneway_requests_in_flight",
    "redis_duration": "laneway_redis_operation_duration_seconds",
    "redis_errors": "laneway_redis_errors_total",
    "spend": "laneway_spend_usd_total",
    "cache_lookups": "laneway_cache_lookups_total",
    "cache_stores": "laneway_cache_stores_total",
    "cache_joins": "laneway_cache_single_flight_joins_total",
}

_SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
            81.92)
BUCKETS = {
    "operation_duration": _SECONDS,
    "request_duration": _SECONDS,
    "queue_wait": (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    "token_usage": (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                    16777216, 67108864),
    "time_to_first_token": (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                            1.0, 2.5, 5.0, 7.5, 10.0),
    "time_per_output_token": (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                              1.0, 2.5),
    "overhead": (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
    "redis_duration": (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                       0.25, 0.5, 1.0, 2.5),
}


class Capped:
    """Label values a client can choose (model names, priorities) are capped per label, so a
    client cannot create unbounded time series: past `limit` values, new ones read "other"."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value
