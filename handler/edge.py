"""One pure ASGI middleware for what every HTTP request gets before any route sees it:

- a request id (the client's `x-request-id`, or a new one) in `scope["state"]`, echoed on
  every response, errors included;
- the body size cap: a declared `Content-Length` over the cap is refused before a byte of the
  body is read, and the bytes actually received are counted as they arrive, so neither a
  chunked upload nor a lying `Content-Length` makes the gateway hold more than the cap
  (under Mangum the event body is already in memory, and is refused the same way);
- the body read timeout: a client that goes silent in the middle of its body is answered 408
  instead of holding its connection and task for ever;
- the same bound the other way: a client that stops reading a streamed reply for that long is
  let go as if it had disconnected (`_Stall`), so that its upstream call ends and its slot is
  freed, instead of both waiting on it until the request's timeout (and the task for ever).

Both refusals are OpenAI error bodies with `connection: close`: whatever the client still sends
is not worth reading.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import MutableMapping
from typing import Any

from handler.errors import error_response
from handler.limits import HttpLimits
from router.errors import BadRequest, RequestError, RequestTimeout

__all__ = ["EdgeMiddleware", "body_too_large"]

Message = MutableMapping[str, Any]
_CLOSE = {"connection": "close"}

log = logging.getLogger("laneway.http")


class ClientStalled(Exception):
    """The client stopped reading its streamed reply (not a RequestError: the reply has
    started, so nothing answers it; the edge ends the request here)."""


def body_too_large(limit: int) -> RequestError:
    return BadRequest(f"The request body is larger than this gateway accepts ({limit} bytes).",
                      status=413, code="request_too_large", headers=dict(_CLOSE))


class EdgeMiddleware:
    def __init__(self, app: Any, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = declared = None
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id" and value:
                rid = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        if rid is None:
            rid = uuid.uuid4().hex
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        stall: _Stall | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal stall
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append(rid_header)
                message = {**message, "headers": headers}
            elif stall is not None or message.get("more_body"):
                if stall is None:  # a stream: its writes are watched from here on
                    stall = _Stall(self.limits.read_timeout)
                stall.since = stall.loop.time()  # (inline: it runs for every chunk)
                try:
                    await send(message)
                except asyncio.CancelledError:
                    stall.raise_if_stalled()
                    raise
                finally:
                    stall.since = None
                return
            await send(message)

        limit = self.limits.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            # (uvicorn refuses a malformed Content-Length itself; Mangum passes it through.)
            await error_response(body_too_large(limit))(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, self._bounded(receive), send_with_id)
        except ClientStalled as exc:
            # The stream's generators were closed on the way out (the upstream call ended, the
            # slot freed); the server closes the connection of a reply left unfinished.
            log.warning("request %s: %s", rid, exc)
        finally:
            if stall is not None:
                stall.close()

    def _bounded(self, receive: Any) -> Any:
        limit, timeout = self.limits.max_body_bytes, self.limits.read_timeout
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:  # past the body only a disconnect can come; waiting for it is fine
                return await receive()
            try:
                async with asyncio.timeout(timeout):
                    message: Message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"The request body did not arrive within {timeout:g} "
                                     "seconds of silence.", headers=dict(_CLOSE)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise body_too_large(limit)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return bounded_receive


class _Stall:
    """Bounds how long one write of a stream may wait for the client to read: one timer per
    stream, re-armed while it lasts, and two assignments per write (in EdgeMiddleware), so a
    client that reads costs next to nothing. Past `timeout` seconds the waiting write's task
    is cancelled, and the write raises ClientStalled."""

    __slots__ = ("handle", "loop", "since", "stalled", "task", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()  # the one that writes the stream
        self.since: float | None = None
        self.stalled = False
        self.handle: asyncio.TimerHandle | None = self.loop.call_later(timeout, self._check)

    def raise_if_stalled(self) -> None:
        """In a write that was cancelled: ClientStalled when the cancel was this watch's."""
        if self.stalled and self.task is not None and self.task.uncancel() == 0:
            raise ClientStalled(f"the client did not read its stream for {self.timeout:g} "
                                "seconds; let go")

    def _check(self) -> None:
        waited = self.loop.time() - self.since if self.since is not None else 0.0
        if waited >= self.timeout and self.task is not None:
            self.stalled = True
            self.task.cancel()
            self.handle = None
        else:
            self.handle = self.loop.call_later(self.timeout - waited, self._check)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
