"""One flat view of a finished request, shared by the log line, the webhook and Langfuse.

Built once per request with plain dict and float operations; no formatting work here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.records import CallRecord

__all__ = ["Finished", "ms", "record_fields"]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def record_fields(
    record: CallRecord, *, duration: float, overhead: float | None
) -> dict[str, Any]:
    """The per-request fields, every key always present (null when unknown), so log queries
    can rely on one schema. `duration` is the whole request as the client saw it; `overhead`
    the time laneway spent itself (None when it is not meaningful, e.g. for failures)."""
    r = record
    return {
        "request_id": r.request_id,
        "endpoint": r.endpoint,
        "model": r.model,
        "model_group": r.model_group or None,
        "deployment_id": r.deployment_id or None,
        "provider": r.provider or None,
        "priority": r.priority,
        "stream": r.stream,
        "status": r.status,
        "error_type": r.error_type,
        "queued": r.queued,
        "queue_ms": ms(r.queue_seconds),
        "upstream_ms": ms(r.upstream_seconds),
        "ttft_ms": ms(r.time_to_first_token),
        "overhead_ms": ms(overhead),
        "duration_ms": ms(duration),
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "retries": r.retries,
        "fallback_from": r.fallback_from,
        "cooldowns": r.cooldowns or None,
        "cost": round(r.cost, 9),
        "key_alias": r.key_alias,
        "team_id": r.team_id,
        "soft_budget_crossed": list(r.soft_budget_crossed) or None,
        "cache_key": r.cache_key,
        "cache_hit": r.cache_hit if r.cache_key else None,
        "cache_stored": r.cache_stored if r.cache_key else None,
        "cache_joined": r.cache_joined if r.cache_key else None,
    }


@dataclass(slots=True)
class Finished:
    """A finished request as the callbacks see it. The raw bodies are references to the bytes
    the gateway received and sent (nothing is copied or parsed on the request path); they are
    None when message logging is off or the engine was used without the gateway."""

    record: CallRecord
    fields: dict[str, Any]
    started_at: float
    """Wall-clock (epoch) seconds when the request arrived."""
    ended_at: float
    request_body: bytes | None = None
    response_body: list[bytes] | None = None

    @property
    def success(self) -> bool:
        return self.record.status < 400
