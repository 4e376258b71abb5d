"""The generic `webhook` callback: batches of finished requests POSTed as JSON to one URL.

Body: `{"source": "laneway", "events": [event, ...]}`; each event carries every field of the
per-request log line plus `event` ("success" or "failure"), `start_time` / `end_time` (ISO
8601, UTC), `input` / `output` (unless message logging is off), the request's `metadata`, and
`error_message` for failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from router.observe.content import Exchange, read_exchange
from router.observe.fields import Finished
from router.observe.langfuse import iso
from router.observe.sender import Delivery

__all__ = ["WebhookTarget", "parse_headers", "webhook_event"]


def webhook_event(item: Finished, with_content: bool = True) -> dict[str, Any]:
    r = item.record
    ex = read_exchange(r.endpoint, r.stream, item.request_body, item.response_body) \
        if with_content else Exchange()
    return {
        "event": "success" if item.success else "failure",
        **item.fields,
        "start_time": iso(item.started_at),
        "end_time": iso(item.ended_at),
        "input": ex.input,
        "output": ex.output,
        "response_model": ex.response_model,
        "metadata": ex.metadata or None,
        "error_message": None if item.success else (ex.error_message or r.error_type),
    }


def parse_headers(spec: str | None) -> dict[str, str]:
    """`Name=value,Name2=value2` (the LANEWAY_WEBHOOK_HEADERS format) as a dict."""
    out: dict[str, str] = {}
    for pair in (spec or "").split(","):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    with_content: bool = True

    def encode(self, batch: list[Finished]) -> Delivery:
        body = orjson.dumps({"source": "laneway",
                             "events": [webhook_event(i, self.with_content) for i in batch]})
        return Delivery(self.url, body, {**self.headers, "content-type": "application/json"})
