"""The `langfuse` callback: each request becomes a trace and a generation in Langfuse.

Sent to Langfuse's public ingestion API, `POST {LANGFUSE_HOST}/api/public/ingestion`, with HTTP
basic auth (public key : secret key) and a body `{"batch": [event, ...], "metadata": {...}}`.
LiteLLM's request `metadata` keys are honoured: `trace_id`, `trace_name`, `generation_name`,
`session_id`, `trace_user_id`, `tags`.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from router.observe.content import Exchange, read_exchange
from router.observe.fields import Finished
from router.observe.sender import Delivery

__all__ = ["DEFAULT_HOST", "LangfuseTarget", "langfuse_events"]

DEFAULT_HOST = "https://cloud.langfuse.com"

_LANEWAY_KEYS = ("request_id", "model_group", "deployment_id", "provider", "priority", "status",
                 "queued", "queue_ms", "upstream_ms", "overhead_ms", "retries", "fallback_from",
                 "cooldowns")


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def langfuse_events(item: Finished, with_content: bool = True) -> list[dict[str, Any]]:
    """A `trace-create` and a `generation-create` event for one finished request."""
    r = item.record
    ex = read_exchange(r.endpoint, r.stream, item.request_body, item.response_body) \
        if with_content else Exchange()
    meta = ex.metadata
    trace_id = _text(meta.get("trace_id")) or r.request_id
    laneway = {k: item.fields.get(k) for k in _LANEWAY_KEYS}
    tags = meta.get("tags")
    trace: dict[str, Any] = {
        "id": trace_id,
        "name": _text(meta.get("trace_name")) or f"laneway-{r.endpoint}",
        "timestamp": iso(item.started_at),
        "userId": _text(meta.get("trace_user_id")) or ex.user,
        "sessionId": _text(meta.get("session_id")),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else None,
        "input": ex.input,
        "output": ex.output,
        "metadata": {"laneway": laneway},
    }
    usage = {"input": r.prompt_tokens, "output": r.completion_tokens,
             "total": r.prompt_tokens + r.completion_tokens}
    generation: dict[str, Any] = {
        "id": r.request_id,
        "traceId": trace_id,
        "name": _text(meta.get("generation_name")) or f"laneway-{r.endpoint}",
        "startTime": iso(item.started_at),
        "endTime": iso(item.ended_at),
        "model": ex.response_model or r.model_group or r.model,
        "modelParameters": {k: v if isinstance(v, str | int | float | bool) else orjson.dumps(
            v).decode() for k, v in ex.parameters.items()},
        "input": ex.input,
        "output": ex.output,
        "usage": {**usage, "unit": "TOKENS"},
        "usageDetails": usage,
        "level": "DEFAULT" if item.success else "ERROR",
        "statusMessage": None if item.success else (ex.error_message or r.error_type),
        "metadata": {"laneway": laneway, "requested_model": r.model},
    }
    if r.time_to_first_token is not None:
        first = item.ended_at - r.upstream_seconds + r.time_to_first_token
        generation["completionStartTime"] = iso(min(first, item.ended_at))
    stamp = iso(item.ended_at)
    return [
        {"id": uuid.uuid4().hex, "timestamp": stamp, "type": "trace-create",
         "body": {k: v for k, v in trace.items() if v is not None}},
        {"id": uuid.uuid4().hex, "timestamp": stamp, "type": "generation-create",
         "body": {k: v for k, v in generation.items() if v is not None}},
    ]


@dataclass(frozen=True, slots=True)
class LangfuseTarget:
    public_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    host: str = DEFAULT_HOST
    with_content: bool = True

    def encode(self, batch: list[Finished]) -> Delivery:
        events = [event for item in batch for event in langfuse_events(item, self.with_content)]
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        body = orjson.dumps({"batch": events, "metadata": {"sdk_name": "laneway",
                                                           "batch_size": len(events)}})
        return Delivery(
            url=self.host.rstrip("/") + "/api/public/ingestion",
            body=body,
            headers={"authorization": f"Basic {token}", "content-type": "application/json"},
        )
