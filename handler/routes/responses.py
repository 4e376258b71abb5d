"""OpenAI's Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

A request is translated to chat (router/translate/responses.py) and served by `Router.serve`
like any chat completion, so lanes, limits, tenants, retries and fallbacks apply; a deployment
whose provider speaks the Responses API (OpenAI, Azure) gets the request as it was sent. For
translated replies laneway keeps the conversation (`store`, default true) so that
`previous_response_id` continues it on any instance.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.limits import HttpLimits
from handler.routes.inference import headers_for, until_disconnect
from handler.streaming import (
    SSEResponse,
    json_bytes,
    json_response,
    raise_as_upstream,
    translated_sse,
    typed_sse,
)
from handler.surface import HeaderForwarding, priority_of, provider_headers
from handler.validation import parse_body, validate
from router.dispatch import CHAT, RESPONSES, Native
from router.errors import (
    BadRequest,
    ClientDisconnected,
    NotFound,
    RequestError,
    ServiceUnavailable,
    echoed,
)
from router.providers.catalog import get_provider
from router.router import Router

if TYPE_CHECKING:
    from router.state.base import Kept
    from router.translate.store import ResponseStore

__all__ = ["add_responses_routes"]

log = logging.getLogger("laneway.responses")

JSON = dict[str, Any]


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response found with id '{echoed(response_id)}'.", param="response_id",
                    code="not_found")


def _all_native(router: Router, model: str) -> bool:
    """Whether every deployment of `model`'s group speaks the Responses API itself."""
    group = router.groups.get(model)
    if group is None:
        return False
    for d in group.deployments:
        speaks = getattr(get_provider(d.provider), "speaks", None)
        if speaks is None or not speaks(d, RESPONSES):
            return False
    return True


def add_responses_routes(app: FastAPI, router: Router, limits: HttpLimits,
                         watch_disconnect: bool) -> None:
    forwarding = HeaderForwarding.from_config(router.config)
    made: list[ResponseStore] = []

    def store_of() -> ResponseStore:
        # Built (and the translation modules imported) on first use, not at cold start.
        if not made:
            from router.state.kv import kv_for
            from router.translate.store import DEFAULT_MAX_BYTES, DEFAULT_TTL, ResponseStore

            settings = router.config.general_settings
            made.append(ResponseStore(kv_for(router.state),
                                      settings.response_store_ttl or DEFAULT_TTL,
                                      settings.response_store_max_bytes or DEFAULT_MAX_BYTES))
        return made[0]

    async def create(request: Request) -> Response:
        import router.translate.responses as tr  # on first use; then the cheapest spelling

        store = store_of()
        rid: str = request.state.request_id
        body = parse_body(await request.body())
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("`model` is required and must be a string.", param="model")
        for flag in ("stream", "store"):
            if not isinstance(body.get(flag), bool | None):
                raise BadRequest(f"`{flag}` must be a boolean.", param=flag)
        principal = principal_of(request)
        owner = store.owner_of(principal)
        history: list[JSON] | None = None
        previous = body.get("previous_response_id")
        if previous is not None:
            if not isinstance(previous, str):
                raise BadRequest("`previous_response_id` must be a string.",
                                 param="previous_response_id")
            stored = await store.load(owner, previous)
            if stored is not None:
                history = stored.messages
            elif not _all_native(router, model):
                raise NotFound(f"Previous response with id '{echoed(previous)}' not found.",
                               param="previous_response_id", code="previous_response_not_found")
        chat = tr.to_chat(body, history)
        validate(CHAT, chat, limits.max_n)
        # A conversation laneway holds must go on where it is held: translated.
        native = None if history is not None else Native(
            RESPONSES, body, tr.usage_to_chat, tr.stream_meter)
        response_id = tr.new_id()
        skip = 1 if body.get("instructions") else 0
        asked = chat["messages"][skip:]  # the conversation so far, without `instructions`
        keeper = _Keeper(tr, store, owner, body, response_id, asked) if (
            body.get("store") is not False) else None
        try:
            served, record = await router.serve(
                CHAT, chat, request_id=rid, priority=priority_of(request), principal=principal,
                abandoned=(lambda: until_disconnect(request)) if watch_disconnect else None,
                native=native, forward_headers=forwarding.pick(request), keep=keeper)
        except ClientDisconnected:
            return Response(status_code=499)
        headers = headers_for(record, served, False)
        if served.headers:
            headers.update(provider_headers(served.headers))
        if isinstance(served.response, dict):
            if served.native:
                return json_response(served.response, headers=headers)
            if keeper is not None and keeper.encoded is not None:
                encoded = keeper.encoded  # translated (and kept) before the release
            else:
                if keeper is not None and keeper.failure is not None:
                    raise_as_upstream(keeper.failure, served.deployment)
                try:
                    reply = tr.from_chat(served.response, body, response_id)
                except Exception as exc:
                    raise_as_upstream(exc, served.deployment)
                encoded = json_bytes(reply)
                if keeper is not None:
                    keeper.reply, keeper.encoded = reply, encoded
            if keeper is not None:
                await keeper.save()
                encoded = keeper.encoded or encoded  # encoded again if it could not be stored
            return Response(encoded, headers=headers, media_type="application/json")
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"
        body_bytes: AsyncIterator[bytes]
        if served.native:
            body_bytes = typed_sse(served.response, _native_failure)
        else:
            stream = tr.ResponsesStream(body, response_id)
            if keeper is not None:
                keeper.stream = stream
            body_bytes = translated_sse(cast(AsyncGenerator[JSON, None], served.response),
                                        stream, served.deployment, stream.fail,
                                        keeper.save if keeper is not None else None)
        return SSEResponse(body_bytes, headers=headers)

    async def retrieve(request: Request) -> Response:
        store = store_of()
        response_id = request.path_params["response_id"]
        stored = await store.load(store.owner_of(principal_of(request)), response_id)
        if stored is None:
            raise _not_found(response_id)
        return json_response(stored.response)

    async def delete(request: Request) -> Response:
        store = store_of()
        response_id = request.path_params["response_id"]
        if not await store.delete(store.owner_of(principal_of(request)), response_id):
            raise _not_found(response_id)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})

    for prefix in ("", "/v1"):
        app.add_api_route(f"{prefix}/responses", create, methods=["POST"])
        app.add_api_route(f"{prefix}/responses/{{response_id}}", retrieve, methods=["GET"])
        app.add_api_route(f"{prefix}/responses/{{response_id}}", delete, methods=["DELETE"])


class _Keeper:
    """The conversation, stored by the release of the attempt that served it (in its script:
    no round trip of its own), or by `save` where no release kept it (a cache hit, a mock, a
    backend that could not). Called by the engine just before that release, with the chat
    reply (translated here, once) or None for a stream (ended here, once)."""

    def __init__(self, tr: Any, store: ResponseStore, owner: str, body: JSON,
                 response_id: str, asked: list[JSON]) -> None:
        self.tr, self.store, self.owner, self.body, self.response_id = (
            tr, store, owner, body, response_id)
        self.asked = asked
        self.stream: Any = None
        self.reply: JSON | None = None
        self.encoded: bytes | None = None
        self.failure: Exception | None = None
        self.kept: Kept | None = None
        self.called = False  # by the engine: `kept` is decided (None when too large to keep)

    def __call__(self, response: JSON | None) -> Kept | None:
        if response is None and self.stream is None:
            return None  # no stream to end yet: `save` stores it the slow way
        tr = self.tr
        self.called = True
        try:
            if response is None:
                self.stream.end()  # the route sends these events after the release
                self.reply = self.stream.response
            else:
                self.reply = tr.from_chat(response, self.body, self.response_id)
                self.encoded = json_bytes(self.reply)
            self.kept = self.store.kept(self.owner, self.reply,
                                        [*self.asked, tr.assistant_message(self.reply)],
                                        self.encoded)
            if self.kept is None:  # too large to keep: the response says it is not stored
                self._unstored()
        except Exception as exc:  # the route raises it as the upstream's, where it meets it
            self.failure, self.encoded = exc, None
            return None
        return self.kept

    async def save(self) -> None:
        """Before the client hears it is done: it may follow up on another instance. A store
        that cannot be reached (Redis away, the gateway failing open) does not cost the client
        its answer: the response says it is not stored."""
        try:
            await self._save()
        except ServiceUnavailable as exc:
            log.warning("response %s not stored: %s", self.response_id, exc.message)
            self._unstored()

    def _final(self) -> JSON:
        """The response object the client gets: translated here, or the stream's."""
        return self.reply if self.reply is not None else self.stream.response

    def _unstored(self) -> None:
        reply = self._final()
        reply["store"] = False  # (a stream's last event is encoded after this)
        if self.encoded is not None:
            self.encoded = json_bytes(reply)

    async def _save(self) -> None:
        if self.called and self.failure is None:
            if self.kept is not None and not self.kept.landed:
                await self.store.put(self.kept)
            return
        reply = self._final()
        if not await self.store.save(self.owner, reply,
                                     [*self.asked, self.tr.assistant_message(reply)],
                                     self.encoded):
            self._unstored()


def _native_failure(exc: RequestError) -> list[JSON]:
    code = exc.code if exc.code is not None else str(exc.status)
    return [{"type": "error", "code": code, "message": exc.message, "param": exc.param,
             "sequence_number": 0}]
