"""Wire helpers every adapter shares: sending a call, reading streams, shaping errors.

Adapters stay thin by routing all HTTP through `post_json` / `open_stream`, which translate
httpx failures and upstream error responses into `router.errors` classes in one place.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from router.errors import (
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    RequestError,
    RequestTimeout,
    UpstreamError,
    UpstreamUnavailable,
    error_for_status,
    redact,
)

if TYPE_CHECKING:
    from router.groups import Deployment
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

# Phrases upstreams use when the prompt does not fit the model. Matched case-insensitively
# against the error message when the upstream gives no machine-readable code.
_CONTEXT_PHRASES = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|input is too long|"
    r"too many (?:input )?tokens|reduce the length|must be <= \d+|"
    r"exceeds the (?:model's )?(?:maximum|max)|"
    r"input length .* exceed|tokens? .* exceed|exceeds? .* tokens|maximum (?:input )?length",
    re.IGNORECASE,
)
_CONTENT_CODES = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def completion_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def reject_unsupported(
    body: JSON, supported: frozenset[str], provider: str, drop: bool
) -> JSON:
    """`body` without params the provider cannot take: dropped if allowed, else a 400."""
    extra = [k for k in body if k not in supported]
    if not extra:
        return body
    if not drop:
        raise BadRequest(
            f"{provider} does not support the parameter `{extra[0]}`. Remove it, or set "
            "`litellm_settings.drop_params: true` to drop unsupported parameters.",
            param=extra[0],
            code="unsupported_parameter",
        )
    return {k: v for k, v in body.items() if k in supported}


# ---------------------------------------------------------------- error mapping


def _duration(text: str) -> float | None:
    """Seconds in "20", "1.5", "6m0s", "250ms" or an HTTP date."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(text))
    parts = _DURATION_PART.findall(text)
    if parts:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(n) * scale[unit] for n, unit in parts)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(text)
        return max(0.0, when.timestamp() - time.time())
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long the upstream asks us to wait, from Retry-After and the rate-limit reset hints."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000.0)
    value = headers.get("retry-after")
    if value:
        seconds = _duration(value)
        if seconds is not None:
            return seconds
    resets = [
        _duration(headers[h])
        for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if headers.get(h)
    ]
    known = [s for s in resets if s is not None]
    return max(known) if known else None


def _error_fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, code, param, type) from the error bodies upstreams send."""
    if isinstance(payload, list) and payload:  # some servers wrap the body in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        return None, None, None, None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return err, None, None, payload.get("error_type") or payload.get("type")
    if not isinstance(err, dict):
        return None, None, None, None
    inner = err.get("innererror")
    code = err.get("code")
    if isinstance(inner, dict) and inner.get("code") in _CONTENT_CODES:
        code = inner["code"]
    message = err.get("message") or payload.get("message") or payload.get("detail")
    return (
        str(message) if message is not None else None,
        str(code) if code is not None else None,
        err.get("param") if isinstance(err.get("param"), str) else None,
        str(err.get("type")) if err.get("type") is not None else None,
    )


def error_from_response(
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    deployment: Deployment,
    *,
    fields: Callable[[Any], tuple[str | None, str | None, str | None, str | None]] | None = None,
) -> RequestError:
    """The laneway error for an upstream's error response (any provider's body shape)."""
    try:
        payload = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        payload = None
    message, code, param, err_type = (fields or _error_fields)(payload)
    if not message:
        text = content.decode("utf-8", "replace").strip()[:500]
        message = text or f"upstream answered with HTTP {status}"
    where = f"{deployment.provider}/{deployment.model}"
    message = redact(f"{where}: {message}", deployment.secrets)
    kwargs: dict[str, Any] = {"param": param}
    if status == 429 or status >= 500:
        kwargs["retry_after"] = retry_after_seconds(headers)
    if code in _CONTENT_CODES or (err_type or "").lower() in _CONTENT_CODES:
        return ContentPolicyViolation(message, param=param)
    if status in (400, 413, 422) and (
        code == "context_length_exceeded" or _CONTEXT_PHRASES.search(message)
    ):
        return ContextWindowExceeded(message, param=param)
    return error_for_status(status, message, **kwargs)


def map_transport_error(exc: httpx.HTTPError, deployment: Deployment) -> RequestError:
    """httpx's own failures (timeouts, refused connections, broken streams)."""
    where = f"{deployment.provider}/{deployment.model}"
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(
            f"{where}: the upstream did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):
        detail = str(exc) or type(exc).__name__
        return UpstreamUnavailable(
            redact(f"{where}: cannot reach the upstream: {detail}", deployment.secrets))
    return UpstreamError(f"{where}: {type(exc).__name__}")


# ---------------------------------------------------------------- calls


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
    fields: Callable[[Any], tuple[str | None, str | None, str | None, str | None]] | None = None,
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
    fields: Callable[[Any], tuple[str | None, str | None, str | None, str | None]] | None = None,
) -> AsyncIterator[httpx.Response]:
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


async def iter_sse(resp: httpx.Response) -> AsyncIterator[tuple[str, bytes]]:
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


async def iter_ndjson(resp: httpx.Response) -> AsyncIterator[Any]:
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


# ---------------------------------------------------------------- shape helpers

# OpenAI params whose default value asks nothing of the provider, so they never count as
# unsupported when a client sends them with that value.
_NEUTRAL = {"n": 1, "logprobs": False, "stream": False, "parallel_tool_calls": True,
            "presence_penalty": 0, "frequency_penalty": 0}


def without_neutral(body: JSON) -> JSON:
    """`body` minus None values and params that sit at their no-op default."""
    return {k: v for k, v in body.items()
            if v is not None and not (k in _NEUTRAL and v == _NEUTRAL[k])}


def prompt_messages(prompt: Any) -> list[JSON]:
    """A completions `prompt` as one user message (chat-only providers)."""
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("this provider takes one prompt string per request", param="prompt")
        prompt = prompt[0]
    return [{"role": "user", "content": str(prompt or "")}]


def text_completion_from_chat(result: JSON) -> JSON:
    """A `chat.completion` reshaped as a `text_completion`."""
    return {
        "id": result.get("id", completion_id("cmpl")),
        "object": "text_completion",
        "created": result.get("created", int(time.time())),
        "model": result.get("model"),
        "choices": [{"index": c.get("index", 0), "text": (c.get("message") or {}).get("content")
                     or "", "finish_reason": c.get("finish_reason"), "logprobs": None}
                    for c in result.get("choices", [])],
        "usage": result.get("usage"),
    }


def text_chunk_from_chat(chunk: JSON) -> JSON:
    """A `chat.completion.chunk` reshaped as a streamed `text_completion` chunk."""
    out = {"id": chunk.get("id"), "object": "text_completion", "created": chunk.get("created"),
           "model": chunk.get("model"),
           "choices": [{"index": c.get("index", 0), "text": (c.get("delta") or {}).get("content")
                        or "", "finish_reason": c.get("finish_reason"), "logprobs": None}
                       for c in chunk.get("choices", [])]}
    if chunk.get("usage"):
        out["usage"] = chunk["usage"]
    return out


def encode_embedding(vector: list[float], encoding_format: str | None) -> Any:
    """An embedding as OpenAI returns it: floats, or base64 of little-endian float32."""
    if encoding_format != "base64":
        return vector
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def no_endpoint(provider: str, what: str) -> BadRequest:
    return BadRequest(f"{provider} deployments do not support {what}", param="model",
                      code="unsupported_endpoint")
