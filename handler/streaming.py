"""Server-sent events: the OpenAI stream format (`data:` lines, relayed chunk by chunk) and the
typed events of the Responses and Messages streams (`event: <type>` lines)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

import orjson
from starlette.responses import Response, StreamingResponse

from router.errors import InternalError, RequestError, UpstreamError

if TYPE_CHECKING:
    from router.groups import Deployment

log = logging.getLogger("laneway.http")

__all__ = ["EventStream", "SSEResponse", "json_bytes", "json_response", "raise_as_upstream",
           "sse", "translated_sse", "typed_sse"]

JSON = dict[str, Any]
OnError = Callable[[RequestError], list[JSON]]

_DONE = b"data: [DONE]\n\n"


def json_bytes(value: Any) -> bytes:
    """A reply as JSON. An upstream's reply that was read but cannot be written again (nested
    deeper than the encoder allows, or an integer beyond 64 bits) is the upstream's failure: a
    502, not the gateway's 500."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise _unencodable() from None


def _unencodable() -> UpstreamError:
    return UpstreamError("The upstream's reply could not be relayed (it is nested too deeply, "
                         "or holds an integer too large, to encode).")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON answer, encoded by the one encoder."""
    return Response(json_bytes(data), status_code=status, headers=headers,
                    media_type="application/json")


class SSEResponse(StreamingResponse):
    """A stream of server-sent events whose generators are closed however the response ends.
    Starlette leaves its body iterator suspended when a write raises (a client that stopped
    reading, handler/edge.py): closing it here ends the upstream call and frees its slot at
    once, not when the garbage collector finds it."""

    media_type = "text/event-stream"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await _close(cast(AsyncIterator[Any], self.body_iterator))


async def sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Encode chunks as SSE events. An error after the first byte can no longer change the
    status code, so it is sent as a final `error` event in the OpenAI shape."""
    try:
        async for chunk in chunks:
            yield b"data: " + json_bytes(chunk) + b"\n\n"
    except RequestError as exc:
        yield b"data: " + orjson.dumps(exc.body()) + b"\n\n"
        return
    except Exception as exc:
        log.error("stream failed: %s", type(exc).__name__, exc_info=exc)
        yield b"data: " + orjson.dumps(InternalError("The stream failed.").body()) + b"\n\n"
        return
    finally:
        await _close(chunks)  # closed early: end the relay (and its slot) now
    yield _DONE


_HEADS: dict[str, bytes] = {}
"""`event: <type>\\ndata: ` per event type: the few dozen types of the two APIs."""


def _frames(events: list[JSON]) -> bytes:
    """Events with a `type` as SSE (`event: <type>`), in one write."""
    out = []
    try:
        for event in events:
            kind = event.get("type")
            head = _HEADS.get(kind) if isinstance(kind, str) else None
            if head is None:
                head = b"event: " + str(kind).encode() + b"\ndata: "
                if isinstance(kind, str) and len(_HEADS) < 256:  # a native upstream's types
                    _HEADS[kind] = head                            # could be without end
            out.append(head)
            out.append(orjson.dumps(event))
            out.append(b"\n\n")
    except orjson.JSONEncodeError:  # what an upstream sent, read but not writable again
        raise _unencodable() from None
    return b"".join(out)


async def _close(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _failed(exc: Exception) -> RequestError:
    if isinstance(exc, RequestError):
        return exc
    log.error("stream failed: %s", type(exc).__name__, exc_info=exc)
    return InternalError("The stream failed.")


async def typed_sse(events: AsyncIterator[JSON], on_error: OnError) -> AsyncIterator[bytes]:
    """A native Responses or Messages stream (the upstream's own events) as SSE. An error after
    the first byte becomes the stream's own error events (`on_error`)."""
    try:
        async for event in events:
            yield _frames([event])
    except Exception as exc:
        failure = _failed(exc)
    else:
        return
    finally:
        await _close(events)
    yield _frames(on_error(failure))


class EventStream(Protocol):
    """A translation of chat chunks into another API's stream events."""

    def start(self) -> list[JSON]: ...

    def feed(self, chunk: JSON) -> list[JSON]: ...

    def end(self) -> list[JSON]: ...


def raise_as_upstream(exc: Exception, source: Deployment) -> NoReturn:
    """An upstream reply or chunk of the wrong shape that its translation tripped over is the
    upstream's failure (a 502, or an error event, naming it), not the gateway's: raised as
    such. Anything else is raised as it is."""
    from router.providers._wire import SHAPE_ERRORS, shape_error  # only when it happens

    if isinstance(exc, SHAPE_ERRORS):
        raise shape_error(exc, source) from exc
    raise exc


async def translated_sse(chunks: AsyncGenerator[JSON, None], stream: EventStream,
                         source: Deployment, on_error: OnError,
                         before_end: Callable[[], Awaitable[None]] | None = None,
                         ) -> AsyncIterator[bytes]:
    """Chat chunks from `source` through `stream` as typed SSE, in one generator (each layer
    of async generators costs every chunk a step): the events one chunk became go out in one
    write. `before_end` runs after the last chunk, before the final events are sent (the
    Responses store saves the conversation there: a client may follow up as soon as it is
    done)."""
    try:
        try:
            yield _frames(stream.start())
            async for chunk in chunks:
                try:
                    events = stream.feed(chunk)
                except Exception as exc:
                    raise_as_upstream(exc, source)
                if events:
                    yield _frames(events)
            try:
                ending = stream.end()
            except Exception as exc:
                raise_as_upstream(exc, source)
            if before_end is not None:
                await before_end()
            yield _frames(ending)
        finally:
            await chunks.aclose()
    except Exception as exc:
        failure = _failed(exc)
    else:
        return
    yield _frames(on_error(failure))
