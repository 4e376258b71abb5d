"""Anthropic's Messages API: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Anthropic clients (the SDK, Claude Code through ANTHROPIC_BASE_URL) send their key as
`x-api-key` (handler/auth.py accepts it) and an `anthropic-version` header (any version is
accepted). A request is translated to chat (router/translate/messages.py) and served by
`Router.serve` like any chat completion; Anthropic deployments get it as it was sent. Errors on
these routes have Anthropic's shape (handler/errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.errors import anthropic_error_body
from handler.limits import HttpLimits
from handler.routes.inference import headers_for, until_disconnect
from handler.streaming import (
    SSEResponse,
    json_response,
    raise_as_upstream,
    translated_sse,
    typed_sse,
)
from handler.surface import HeaderForwarding, priority_of, provider_headers
from handler.validation import parse_body, validate
from router.dispatch import CHAT, MESSAGES, Native
from router.errors import BadRequest, ClientDisconnected, RequestError
from router.router import Router

__all__ = ["add_messages_routes"]

JSON = dict[str, Any]


def _model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("`model` is required and must be a string.", param="model")
    return model


def add_messages_routes(app: FastAPI, router: Router, limits: HttpLimits,
                        watch_disconnect: bool) -> None:
    forwarding = HeaderForwarding.from_config(router.config)

    async def create(request: Request) -> Response:
        import router.translate.messages as tr  # on first use; then the cheapest spelling

        rid: str = request.state.request_id
        body = parse_body(await request.body())
        model = _model(body)
        if "stream" in body and not isinstance(body["stream"], bool | None):
            raise BadRequest("`stream` must be a boolean.", param="stream")
        chat = tr.to_chat(body)
        validate(CHAT, chat, limits.max_n)
        native = Native(MESSAGES, body, tr.usage_to_chat, tr.stream_meter)
        try:
            served, record = await router.serve(
                CHAT, chat, request_id=rid, priority=priority_of(request),
                principal=principal_of(request),
                abandoned=(lambda: until_disconnect(request)) if watch_disconnect else None,
                native=native, forward_headers=forwarding.pick(request))
        except ClientDisconnected:
            return Response(status_code=499)
        headers = {**headers_for(record, served, False), **provider_headers(served.headers),
                   "request-id": rid}
        if isinstance(served.response, dict):
            if served.native:
                return json_response(served.response, headers=headers)
            try:
                reply = tr.from_chat(served.response, model)
            except Exception as exc:
                raise_as_upstream(exc, served.deployment)
            return json_response(reply, headers=headers)
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"

        def on_error(exc: RequestError) -> list[JSON]:
            return [anthropic_error_body(exc.status, exc.message, rid)]

        body_bytes: AsyncIterator[bytes] = (
            typed_sse(served.response, on_error) if served.native else translated_sse(
                cast(AsyncGenerator[JSON, None], served.response), tr.MessagesStream(model),
                served.deployment, on_error))
        return SSEResponse(body_bytes, headers=headers)

    async def count_tokens(request: Request) -> Response:
        from router.translate import messages as tr

        body = parse_body(await request.body())
        model = _model(body)
        fields = {k: v for k, v in body.items() if k not in ("stream", "max_tokens")}
        chat = tr.to_chat({**fields, "max_tokens": 1})
        validate(CHAT, chat, limits.max_n)
        group = router.group_for(model, principal_of(request))
        counter = group.deployments[0].token_counter()
        total = counter.messages(chat["messages"], chat.get("tools"))
        return json_response({"input_tokens": total})

    for prefix in ("", "/v1"):
        app.add_api_route(f"{prefix}/messages", create, methods=["POST"])
        app.add_api_route(f"{prefix}/messages/count_tokens", count_tokens, methods=["POST"])
