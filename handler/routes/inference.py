"""Chat completions, text completions and embeddings, plus the always-queued variants."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

from handler.auth import Authenticator
from handler.observability.context import overhead_ms
from handler.streaming import sse
from router.dispatch import CHAT, EMBED, TEXT, Served
from router.errors import BadRequest, ClientDisconnected
from router.records import CallRecord
from router.router import Router

__all__ = ["add_inference_routes"]

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
_REQUIRED = {CHAT: "messages", TEXT: "prompt", EMBED: "input"}


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def validate(endpoint: str, body: dict[str, Any]) -> None:
    field = _REQUIRED[endpoint]
    value = body.get(field)
    if endpoint == CHAT:
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            raise BadRequest("`messages` must be a non-empty array of message objects.",
                             param="messages")
    elif value is None or value == "" or value == []:
        raise BadRequest(f"`{field}` is required.", param=field)
    if "stream" in body and not isinstance(body["stream"], bool | None):
        raise BadRequest("`stream` must be a boolean.", param="stream")


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def headers_for(record: CallRecord, served: Served, queued_route: bool) -> dict[str, str]:
    headers = {
        "x-request-id": record.request_id,
        "x-laneway-model-group": record.model_group,
        "x-laneway-deployment-id": served.deployment.id,
        "x-laneway-queue-ms": f"{record.queue_seconds * 1000:.1f}",
    }
    overhead = overhead_ms(record)
    if overhead is not None:
        headers["x-laneway-overhead-ms"] = f"{overhead:.1f}"
    if record.queued or queued_route:
        headers["x-litellm-request-prioritization-used"] = "true"
    if record.fallback_from:
        headers["x-laneway-fallback-from"] = record.fallback_from
    return headers


def add_inference_routes(
    app: FastAPI, router: Router, auth: Authenticator, watch_disconnect: bool
) -> None:
    def endpoint_for(kind: str, queued_route: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            rid = request.headers.get("x-request-id") or uuid.uuid4().hex
            request.state.request_id = rid
            auth.check(request)
            body = parse_body(await request.body())
            path_model = request.path_params.get("model")
            if path_model and not body.get("model"):
                body["model"] = path_model
            validate(kind, body)
            try:
                served, record = await router.serve(
                    kind, body, request_id=rid, queue=queued_route,
                    abandoned=(lambda: _until_disconnect(request)) if watch_disconnect else None)
            except ClientDisconnected:
                return Response(status_code=499)  # nobody is there to read it
            headers = headers_for(record, served, queued_route)
            if isinstance(served.response, dict):
                return Response(orjson.dumps(served.response), headers=headers,
                                media_type="application/json")
            headers["cache-control"] = "no-cache"
            headers["x-accel-buffering"] = "no"  # proxies must not buffer the stream
            return StreamingResponse(sse(served.response), headers=headers,
                                     media_type="text/event-stream")

        handle.__name__ = f"{'queue_' if queued_route else ''}{kind}"
        return handle

    for kind, paths in PATHS.items():
        for path in paths:
            app.add_api_route(path, endpoint_for(kind, False), methods=["POST"],
                              include_in_schema="{model}" not in path)
    for kind, paths in QUEUE_PATHS.items():
        for path in paths:
            app.add_api_route(path, endpoint_for(kind, True), methods=["POST"])
