"""Chat completions, text completions and embeddings, plus the always-queued variants."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.limits import HttpLimits
from handler.observability.context import overhead_ms
from handler.openapi import request_body_schema
from handler.streaming import SSEResponse, json_bytes, sse
from handler.surface import HeaderForwarding, priority_of, provider_headers
from handler.validation import parse_body, validate
from router.dispatch import CHAT, EMBED, TEXT, Served
from router.errors import ClientDisconnected
from router.records import CallRecord
from router.router import Router

__all__ = ["add_inference_routes", "headers_for", "until_disconnect"]

T = TypeVar("T")

PATHS: dict[str, tuple[str, ...]] = {
    CHAT: ("/chat/completions", "/v1/chat/completions", "/engines/{model}/chat/completions",
           "/openai/deployments/{model}/chat/completions"),
    TEXT: ("/completions", "/v1/completions", "/engines/{model}/completions",
           "/openai/deployments/{model}/completions"),
    EMBED: ("/embeddings", "/v1/embeddings", "/engines/{model}/embeddings",
            "/openai/deployments/{model}/embeddings"),
}
QUEUE_PATHS: dict[str, tuple[str, ...]] = {
    CHAT: ("/queue/chat/completions", "/v1/queue/chat/completions"),
    TEXT: ("/queue/completions", "/v1/queue/completions"),
}


async def until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(text: str) -> str:
    """`text` as a header value: printable ASCII as it is, anything else (non-ASCII model names,
    control characters) percent-encoded as UTF-8, so a client's string can neither fail to
    encode nor inject a header."""
    return text if text.isascii() and text.isprintable() else quote(text, safe=_HEADER_SAFE)


def headers_for(record: CallRecord, served: Served, queued_route: bool) -> dict[str, str]:
    headers = {
        "x-request-id": record.request_id,
        "x-laneway-model-group": header_value(record.model_group or ""),
        "x-laneway-deployment-id": served.deployment.id,
        "x-laneway-queue-ms": f"{record.queue_seconds * 1000:.1f}",
        "x-litellm-response-cost": f"{record.cost:.9g}",
    }
    overhead = overhead_ms(record)
    if overhead is not None:
        headers["x-laneway-overhead-ms"] = f"{overhead:.1f}"
    if record.queued or queued_route:
        headers["x-litellm-request-prioritization-used"] = "true"
    if record.fallback_from:
        headers["x-laneway-fallback-from"] = header_value(record.fallback_from)
    if record.cache_key:
        headers["x-litellm-cache-key"] = record.cache_key
        headers["x-litellm-cache-hit"] = "true" if record.cache_hit else "false"
    return headers


def add_inference_routes(
    app: FastAPI, router: Router, limits: HttpLimits, watch_disconnect: bool
) -> None:
    forwarding = HeaderForwarding.from_config(router.config)

    def endpoint_for(kind: str, queued_route: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            rid: str = request.state.request_id  # set by EdgeMiddleware
            body = parse_body(await request.body())
            path_model = request.path_params.get("model")
            if path_model and not body.get("model"):
                body["model"] = path_model
            validate(kind, body, limits.max_n)
            try:
                served, record = await router.serve(
                    kind, body, request_id=rid, queue=queued_route,
                    priority=priority_of(request), principal=principal_of(request),
                    abandoned=(lambda: until_disconnect(request)) if watch_disconnect else None,
                    forward_headers=forwarding.pick(request))
            except ClientDisconnected:
                return Response(status_code=499)  # nobody is there to read it
            headers = headers_for(record, served, queued_route)
            if served.headers:
                headers.update(provider_headers(served.headers))
            if isinstance(served.response, dict):
                return Response(json_bytes(served.response), headers=headers,
                                media_type="application/json")
            headers["cache-control"] = "no-cache"
            headers["x-accel-buffering"] = "no"  # proxies must not buffer the stream
            return SSEResponse(sse(served.response), headers=headers)

        handle.__name__ = f"{'queue_' if queued_route else ''}{kind}"
        return handle

    for kind, paths in PATHS.items():
        for path in paths:
            app.add_api_route(path, endpoint_for(kind, False), methods=["POST"],
                              include_in_schema="{model}" not in path,
                              openapi_extra=request_body_schema(kind))
    for kind, paths in QUEUE_PATHS.items():
        for path in paths:
            app.add_api_route(path, endpoint_for(kind, True), methods=["POST"],
                              openapi_extra=request_body_schema(kind))
