"""Upstream failures → `router.errors`: error bodies, statuses, Retry-After, transport errors.

Every provider's error body goes through `error_from_response`, so context-length and
content-filter errors are recognised the same way for all of them, and nothing that looks like
a credential survives into a message.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import Callable, Mapping
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

__all__ = [
    "MAX_RETRY_AFTER",
    "ErrorFields",
    "error_from_response",
    "map_transport_error",
    "retry_after_seconds",
]

ErrorFields = Callable[[Any], tuple[str | None, str | None, str | None, str | None]]
"""Reads (message, code, param, type) out of a provider's parsed error body."""

_TOO_LARGE = re.compile(r"request too large for", re.IGNORECASE)
"""A 429 that is about the request, not the rate (OpenAI's and Groq's wording): one request
asking for more tokens than the upstream allows a minute."""
_CONTEXT_PHRASES = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|input is too long|"
    r"too many (?:input )?tokens|reduce the length|must be <= \d+|"
    r"exceeds the (?:model's )?(?:maximum|max)|"
    r"input length .* exceed|tokens? .* exceed|exceeds? .* tokens|maximum (?:input )?length",
    re.IGNORECASE,
)
_CONTENT_CODES = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")


# However long an upstream asks for, waiting more than a day is not advice worth taking.
MAX_RETRY_AFTER = 86_400.0


def _seconds(value: float) -> float | None:
    """`value` as a wait: NaN means nothing, negatives are now, and huge or infinite a day."""
    if value != value:  # NaN
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def _duration(text: str) -> float | None:
    """Seconds in "20", "1.5", "6m0s", "250ms" or an HTTP date; None when it is none of them."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return _seconds(float(text))
    if _DURATION.fullmatch(text):
        parts = _DURATION_PART.findall(text)
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return _seconds(sum(float(n) * scale[unit] for n, unit in parts))
    with contextlib.suppress(TypeError, ValueError, OverflowError, IndexError):
        when = email.utils.parsedate_to_datetime(text)
        return _seconds(when.timestamp() - time.time())
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """How long the upstream asks us to wait, from Retry-After and the rate-limit reset hints:
    None, or a finite number of seconds between 0 and `MAX_RETRY_AFTER`."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            seconds = _seconds(float(ms) / 1000.0)
            if seconds is not None:
                return seconds
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
    fields: ErrorFields | None = None,
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
    if status == 429 and _TOO_LARGE.search(message):
        # One request larger than the upstream's whole per-minute limit: waiting will not
        # help, and the deployment is not rate limiting anyone else (no cooldown for it).
        return BadRequest(message, param=param, status=413, code="request_too_large")
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
