"""How adapters talk HTTP: one POST, one streamed POST, and the two stream framings (SSE, NDJSON).

All HTTP goes through `post_json` / `open_stream`, which translate httpx failures and upstream
error responses into `router.errors` classes (see `_errors`). The helpers of `_errors` and
`_shapes` are re-exported here so adapters import from one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from router.errors import UpstreamError
from router.providers._errors import (
    ErrorFields,
    error_from_response,
    map_transport_error,
    retry_after_seconds,
)
from router.providers._shapes import (
    completion_id,
    encode_embedding,
    no_endpoint,
    prompt_messages,
    reject_unsupported,
    text_chunk_from_chat,
    text_completion_from_chat,
    usage,
    without_neutral,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.httpclient import UpstreamResponse
    from router.providers.base import JSON, CallContext

__all__ = [
    "completion_id",
    "encode_embedding",
    "error_from_response",
    "iter_ndjson",
    "iter_sse",
    "map_transport_error",
    "no_endpoint",
    "open_stream",
    "post_json",
    "prompt_messages",
    "reject_unsupported",
    "retry_after_seconds",
    "text_chunk_from_chat",
    "text_completion_from_chat",
    "usage",
    "without_neutral",
]


def _timeout(ctx: CallContext, *, stream: bool) -> httpx.Timeout:
    read = (ctx.stream_timeout or ctx.timeout) if stream else ctx.timeout
    return httpx.Timeout(ctx.timeout, read=read)


async def post_json(
    ctx: CallContext,
    deployment: Deployment,
    url: str,
    payload: JSON | bytes,
    headers: Mapping[str, str],
    *,
    fields: ErrorFields | None = None,
) -> Any:
    """POST a JSON body, return the parsed JSON answer or raise the mapped error."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        resp = await ctx.http.post(
            url, content=content, headers=headers, timeout=_timeout(ctx, stream=False)
        )
    except httpx.HTTPError as exc:
        raise map_transport_error(exc, deployment) from exc
    if resp.status_code >= 400:
        raise error_from_response(
            resp.status_code, resp.content, resp.headers, deployment, fields=fields
        )
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            f"{deployment.provider}/{deployment.model}: the upstream answered with invalid JSON"
        ) from exc


@contextlib.asynccontextmanager
async def open_stream(
    ctx: CallContext,
    deployment: Deployment,
    url: str,
    payload: JSON | bytes,
    headers: Mapping[str, str],
    *,
    fields: ErrorFields | None = None,
) -> AsyncIterator[UpstreamResponse]:
    """A streaming POST whose response is known to be a success; errors are mapped."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        async with ctx.http.stream(
            "POST", url, content=content, headers=headers, timeout=_timeout(ctx, stream=True)
        ) as resp:
            if resp.status_code >= 400:
                body = await resp.aread()
                raise error_from_response(
                    resp.status_code, body, resp.headers, deployment, fields=fields
                )
            yield resp
    except httpx.HTTPError as exc:
        raise map_transport_error(exc, deployment) from exc


async def iter_sse(resp: UpstreamResponse) -> AsyncIterator[tuple[str, bytes]]:
    """(event, data) pairs of a Server-Sent Events body, parsed as bytes arrive."""
    buffer = b""
    async for chunk in resp.aiter_bytes():
        buffer += chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block, buffer = buffer[:end], buffer[end + 2 :]
            event, data = _parse_sse_block(block)
            if data is not None:
                yield event, data
    if buffer.strip():
        event, data = _parse_sse_block(buffer)
        if data is not None:
            yield event, data


def _parse_sse_block(block: bytes) -> tuple[str, bytes | None]:
    event = "message"
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    return event, (b"\n".join(data) if data else None)


async def iter_ndjson(resp: UpstreamResponse) -> AsyncIterator[Any]:
    """Parsed objects of a newline-delimited JSON body, as lines arrive."""
    buffer = b""
    async for chunk in resp.aiter_bytes():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield orjson.loads(line)
    if buffer.strip():
        yield orjson.loads(buffer)
