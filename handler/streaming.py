"""Server-sent events in the OpenAI stream format, relayed chunk by chunk."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response

from router.errors import InternalError, RequestError, UpstreamError

log = logging.getLogger("laneway.http")

__all__ = ["json_bytes", "json_response", "sse"]

_DONE = b"data: [DONE]\n\n"


def json_bytes(value: Any) -> bytes:
    """A reply as JSON. An upstream's reply that was read but cannot be written again (nested
    deeper than the encoder allows) is the upstream's failure: a 502, not the gateway's 500."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise UpstreamError("The upstream's reply could not be relayed (it is nested too "
                            "deeply to encode).") from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON answer, encoded by the one encoder."""
    return Response(json_bytes(data), status_code=status, headers=headers,
                    media_type="application/json")


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
    yield _DONE
