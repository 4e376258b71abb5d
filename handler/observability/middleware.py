"""One pure ASGI middleware: opens a `RequestSlot` per POST request, notes the response
status, keeps references to the raw bodies when callbacks or alerts need them, and tells the hub
when the response is complete (or the request failed or was abandoned)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handler.observability.context import CURRENT, RequestSlot

if TYPE_CHECKING:
    from handler.observability.hub import Observability

__all__ = ["ObservabilityMiddleware"]

Message = dict[str, Any]


class ObservabilityMiddleware:
    def __init__(self, app: Any, hub: Observability) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        hub = self.hub
        slot = RequestSlot(scope)
        token = CURRENT.set(slot)
        hub.begin(slot)
        capture, keep_response = hub.capture, hub.capture_response

        async def receive_and_keep() -> Message:
            message: Message = await receive()
            if message["type"] == "http.request":
                slot.request_body.append(message.get("body", b""))
            return message

        async def send_and_note(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                slot.status = message["status"]
            elif keep_response and kind == "http.response.body":
                slot.response_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_and_keep if capture else receive, send_and_note)
        finally:
            CURRENT.reset(token)
            hub.end(slot)
