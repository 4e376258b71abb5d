"""How adapters talk HTTP: one POST, one streamed POST, and the two stream framings (SSE, NDJSON).

All HTTP goes through `post_json` / `open_stream`, which translate httpx failures and upstream
error responses into `router.errors` classes (see `_errors`). Every reply laneway cannot use
becomes an `UpstreamError` (502) here or in `reply_shape`, never another exception: a status
that is not a success, JSON that is not an object, a 200 carrying an error body, a body or a
stream event over the client's `max_response_bytes`. The helpers of `_errors` and `_shapes` are
re-exported here so adapters import from one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from router.errors import RequestError, UpstreamError, redact
from router.httpclient.errors import DEFAULT_MAX_RESPONSE_BYTES, BadResponse, ResponseTooLarge
from router.providers._errors import (
    ErrorFields,
    error_from_response,
    map_transport_error,
    retry_after_seconds,
)
from router.providers._shapes import (
    TextChunks,
    chunks_from_completion,
    clean_usage,
    completion_id,
    embedding_texts,
    encode_embedding,
    no_endpoint,
    prompt_messages,
    reject_unsupported,
    text_chunk_from_chat,
    text_completion_from_chat,
    text_reply,
    usage,
    without_neutral,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.httpclient import UpstreamResponse
    from router.providers.base import JSON, CallContext

__all__ = [
    "SHAPE_ERRORS",
    "TextChunks",
    "chunks_from_completion",
    "clean_usage",
    "completion_id",
    "embedding_texts",
    "encode_embedding",
    "error_from_response",
    "iter_ndjson",
    "iter_sse",
    "map_transport_error",
    "no_endpoint",
    "open_stream",
    "parse_chunk",
    "post_json",
    "prompt_messages",
    "reject_unsupported",
    "reply_shape",
    "retry_after_seconds",
    "shape_error",
    "text_chunk_from_chat",
    "text_completion_from_chat",
    "text_reply",
    "usage",
    "without_neutral",
]


_RATE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
_RATE_NAMES = frozenset({"retry-after", "retry-after-ms", "openai-processing-ms"})


def _with_forwarded(ctx: CallContext, headers: Mapping[str, str]) -> Mapping[str, str]:
    """The adapter's headers plus the client headers the operator forwards (the adapter's own,
    credentials among them, win)."""
    forward = ctx.extra.get("forward_headers") if ctx.extra else None
    return {**forward, **headers} if forward else headers


def _note_headers(ctx: CallContext, headers: Mapping[str, str]) -> None:
    """Keep the upstream's rate-limit and timing headers for the client (sent back prefixed
    `llm_provider-`, LiteLLM's convention)."""
    kept = {k: v for k, v in headers.items()
            if k.lower().startswith(_RATE_PREFIXES) or k.lower() in _RATE_NAMES}
    if kept:
        ctx.extra["upstream_headers"] = kept


def _timeout(ctx: CallContext, *, stream: bool) -> httpx.Timeout:
    read = (ctx.stream_timeout or ctx.timeout) if stream else ctx.timeout
    return httpx.Timeout(ctx.timeout, read=read)


def _where(deployment: Deployment) -> str:
    return f"{deployment.provider}/{deployment.model}"


def _bad_response(exc: BadResponse, deployment: Deployment) -> UpstreamError:
    if isinstance(exc, ResponseTooLarge):
        return UpstreamError(
            f"{_where(deployment)}: the upstream's response is larger than {exc.limit} bytes "
            "(router_settings.max_response_bytes)", code="response_too_large")
    return UpstreamError(redact(f"{_where(deployment)}: {exc}", deployment.secrets))


def status_error(status: int, content: bytes, headers: Mapping[str, str],
                 deployment: Deployment, fields: ErrorFields | None = None) -> RequestError:
    """The error for a response whose status is not a success."""
    if 400 <= status <= 599:
        return error_from_response(status, content, headers, deployment, fields=fields)
    if 300 <= status < 400:
        return UpstreamError(f"{_where(deployment)}: the upstream answered with a redirect "
                             f"(HTTP {status}); redirects are not followed, check api_base")
    return UpstreamError(f"{_where(deployment)}: the upstream answered with HTTP status "
                         f"{status}, which is not a usable response")


def _embedded_status(err: Any, default: int) -> int:
    """The HTTP status an error body names in its `code` or `status`, if it names one."""
    if isinstance(err, dict):
        for key in ("code", "status"):
            value = err.get(key)
            if isinstance(value, str) and len(value) == 3 and value.isdigit():
                value = int(value)
            if type(value) is int and 400 <= value <= 599:
                return value
    return default


def embedded_error(payload: JSON, content: bytes, headers: Mapping[str, str],
                   deployment: Deployment, fields: ErrorFields | None = None,
                   default: int = 502) -> RequestError:
    """The error for an error body that came with a success status (or inside a stream)."""
    status = _embedded_status(payload.get("error"), default)
    return error_from_response(status, content, headers, deployment, fields=fields)


def parse_reply(status: int, content: bytes, headers: Mapping[str, str], deployment: Deployment,
                *, fields: ErrorFields | None = None, allow_list: bool = False) -> Any:
    """A response's JSON object, or the error it is (see the module docstring)."""
    if not 200 <= status < 300:
        raise status_error(status, content, headers, deployment, fields)
    try:
        result = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            f"{_where(deployment)}: the upstream answered with invalid JSON") from exc
    if type(result) is dict:
        if result.get("error") and "choices" not in result and "data" not in result:
            raise embedded_error(result, content, headers, deployment, fields)
        return result
    if allow_list and type(result) is list and result and all(type(r) is dict for r in result):
        return result
    raise UpstreamError(f"{_where(deployment)}: the upstream answered with JSON that is not "
                        f"an object ({type(result).__name__})")


async def post_json(
    ctx: CallContext,
    deployment: Deployment,
    url: str,
    payload: JSON | bytes,
    headers: Mapping[str, str],
    *,
    fields: ErrorFields | None = None,
    allow_list: bool = False,
) -> Any:
    """POST a JSON body, return the JSON object answered (with `allow_list`, a non-empty list
    of objects is accepted too) or raise the mapped error."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        resp = await ctx.http.post(
            url, content=content, headers=_with_forwarded(ctx, headers),
            timeout=_timeout(ctx, stream=False)
        )
    except httpx.HTTPError as exc:
        raise map_transport_error(exc, deployment) from exc
    except BadResponse as exc:
        raise _bad_response(exc, deployment) from exc
    _note_headers(ctx, resp.headers)
    return parse_reply(resp.status_code, resp.content, resp.headers, deployment, fields=fields,
                       allow_list=allow_list)


def is_json(resp: UpstreamResponse) -> bool:
    """Whether a stream request was answered with one JSON document instead of a stream."""
    return resp.headers.get("content-type", "").lower().startswith("application/json")


async def read_reply(resp: UpstreamResponse, deployment: Deployment, *,
                     fields: ErrorFields | None = None) -> Any:
    """The JSON object of a stream request's response that is a document (see `is_json`)."""
    return parse_reply(resp.status_code, await resp.aread(), resp.headers, deployment,
                       fields=fields)


@contextlib.asynccontextmanager
async def open_stream(
    ctx: CallContext,
    deployment: Deployment,
    url: str,
    payload: JSON | bytes,
    headers: Mapping[str, str],
    *,
    fields: ErrorFields | None = None,
    json_ok: bool = False,
) -> AsyncIterator[UpstreamResponse]:
    """A streaming POST whose response is known to be a success; errors are mapped.

    A JSON document where a stream was asked for is read and raised as the error it carries;
    if it is not an error it is refused (a 502), unless the adapter says it can use it
    (`json_ok`, then it checks `is_json` itself)."""
    content = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:
        # The deadline is the engine's (UpstreamClient's); a bare httpx client has none.
        extra = {"deadline": ctx.deadline} if ctx.deadline is not None else {}
        async with ctx.http.stream(
            "POST", url, content=content, headers=_with_forwarded(ctx, headers),
            timeout=_timeout(ctx, stream=True), **extra,
        ) as resp:
            _note_headers(ctx, resp.headers)
            if not 200 <= resp.status_code < 300:
                body = await resp.aread()
                raise status_error(resp.status_code, body, resp.headers, deployment, fields)
            if not json_ok and is_json(resp):
                await read_reply(resp, deployment, fields=fields)
                raise UpstreamError(f"{_where(deployment)}: the upstream answered a stream "
                                    "request with a JSON document instead of a stream")
            yield resp
    except httpx.HTTPError as exc:
        raise map_transport_error(exc, deployment) from exc
    except BadResponse as exc:
        raise _bad_response(exc, deployment) from exc


SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError)
"""What reading upstream JSON of the wrong shape raises."""


def shape_error(exc: BaseException, deployment: Deployment) -> UpstreamError:
    """The 502 for an upstream reply (or stream event) of the wrong shape, naming the
    deployment and, without its secrets, what was wrong."""
    detail = redact(f"{type(exc).__name__}: {exc}"[:200], deployment.secrets)
    return UpstreamError(f"{_where(deployment)}: the upstream's reply is not in the expected "
                         f"shape ({detail})")


class reply_shape:  # used like a function: `with reply_shape(dep):`
    """Turns a reply of the wrong shape into a 502: code reading upstream JSON inside this
    block may index and convert freely, and a missing field or a wrong type (KeyError,
    TypeError, ...) becomes an `UpstreamError` naming the deployment."""

    __slots__ = ("deployment",)

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and isinstance(exc, SHAPE_ERRORS):
            raise shape_error(exc, self.deployment) from exc


def parse_chunk(data: bytes, deployment: Deployment) -> JSON:
    """One stream event's JSON object."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(
            f"{_where(deployment)}: the upstream sent a stream event that is not JSON") from exc
    if type(chunk) is not dict:
        raise UpstreamError(f"{_where(deployment)}: the upstream sent a stream event that is "
                            f"not a JSON object ({type(chunk).__name__})")
    return chunk


def _event_too_large(limit: int) -> UpstreamError:
    return UpstreamError(f"the upstream sent a stream event larger than {limit} bytes "
                         "(router_settings.max_response_bytes)", code="response_too_large")


def _lines(chunk: bytes, carry_cr: bool) -> tuple[bytes, bool]:
    """`chunk` with CRLF and lone CR line ends as LF; a CR at its very end is held back (it
    may be the first half of a CRLF split across reads) and reported as the second value."""
    if carry_cr:
        chunk = b"\r" + chunk
    held = chunk.endswith(b"\r")
    if held:
        chunk = chunk[:-1]
    return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n"), held


async def iter_sse(resp: UpstreamResponse) -> AsyncIterator[tuple[str, bytes]]:
    """(event, data) pairs of a Server-Sent Events body, parsed as bytes arrive.

    An event longer than the response's `max_bytes` (the client's `max_response_bytes`) is an
    UpstreamError: a stream that never ends an event must not grow without bound."""
    limit: int = getattr(resp, "max_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    buffer = bytearray()
    held_cr = False
    async for chunk in resp.aiter_bytes():
        if held_cr or b"\r" in chunk:
            chunk, held_cr = _lines(chunk, held_cr)
        if not buffer and chunk.endswith(b"\n\n"):  # the usual read: whole events only
            for block in chunk[:-2].split(b"\n\n"):
                event, data = _parse_sse_block(block)
                if data is not None:
                    yield event, data
            continue
        searched = len(buffer) - 1  # the old part holds no boundary; one may straddle its end
        buffer += chunk
        pos = 0
        while True:
            end = buffer.find(b"\n\n", max(searched, pos))
            if end < 0:
                break
            event, data = _parse_sse_block(buffer[pos:end])
            pos = end + 2
            if data is not None:
                yield event, data
        if pos:
            del buffer[:pos]
        if len(buffer) > limit:
            raise _event_too_large(limit)
    if held_cr:
        buffer += b"\n"
    if buffer.strip():
        event, data = _parse_sse_block(buffer)
        if data is not None:
            yield event, data


def _parse_sse_block(block: bytes | bytearray) -> tuple[str, bytes | None]:
    event = "message"
    data: list[bytes | bytearray] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
    return event, (b"\n".join(data) if data else None)


async def iter_ndjson(resp: UpstreamResponse) -> AsyncIterator[JSON]:
    """The JSON objects of a newline-delimited JSON body, as lines arrive; a line that is not
    a JSON object, or longer than the response's `max_bytes`, is an UpstreamError."""
    limit: int = getattr(resp, "max_bytes", DEFAULT_MAX_RESPONSE_BYTES)
    buffer = bytearray()
    async for chunk in resp.aiter_bytes():
        searched = len(buffer)
        buffer += chunk
        pos = 0
        while True:
            end = buffer.find(b"\n", max(searched, pos))
            if end < 0:
                break
            line = buffer[pos:end]
            pos = end + 1
            if line.strip():
                yield _ndjson_line(line)
        if pos:
            del buffer[:pos]
        if len(buffer) > limit:
            raise _event_too_large(limit)
    if buffer.strip():
        yield _ndjson_line(buffer)


def _ndjson_line(line: bytes | bytearray) -> JSON:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("the upstream sent a stream line that is not JSON") from exc
    if type(value) is not dict:
        raise UpstreamError("the upstream sent a stream line that is not a JSON object")
    return value
