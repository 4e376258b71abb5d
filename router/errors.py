"""Every error laneway raises, each knowing its HTTP status and whether a retry may help.

    LanewayError
    ├── ConfigError                 the config file or an environment variable is wrong (startup)
    └── RequestError                anything that ends one request; carries an OpenAI error body
        ├── BadRequest              400  invalid_request_error
        │   ├── ContextWindowExceeded   400  code=context_length_exceeded
        │   ├── ContentPolicyViolation  400  code=content_policy_violation
        │   └── BudgetExceeded          400  type=budget_exceeded (a key's or team's budget)
        ├── AuthenticationFailed    401  authentication_error
        ├── PermissionDenied        403  permission_error
        ├── NotFound                404  not_found_error
        ├── RequestTimeout          408  timeout (retryable)
        ├── RateLimited             429  rate_limit_error (retryable, may carry retry_after)
        │   ├── QueueFull           429  code=queue_full
        │   └── TenantLimited       429  a key's or team's own limit (not retried)
        ├── UpstreamError           502, 503, 504: an upstream's server error or bad reply
        │   └── UpstreamUnavailable 503 (connection refused, reset ...; retryable)
        ├── ServiceUnavailable      503  laneway itself cannot serve (state backend down, ...)
        ├── ClientDisconnected      499  the client left while its request waited in line
        └── InternalError           500

`handler/` turns a RequestError into a response in exactly one place; nothing else builds
error bodies. Messages never contain secrets: providers pass upstream messages through
`redact()` before raising.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "ClientDisconnected",
    "ConfigError",
    "ContentPolicyViolation",
    "ContextWindowExceeded",
    "InternalError",
    "LanewayError",
    "NotFound",
    "PermissionDenied",
    "QueueFull",
    "RateLimited",
    "RequestError",
    "RequestTimeout",
    "ServiceUnavailable",
    "TenantLimited",
    "UpstreamError",
    "UpstreamUnavailable",
    "echoed",
    "error_for_status",
    "redact",
]


class LanewayError(Exception):
    """Base of everything laneway raises on purpose."""


class ConfigError(LanewayError):
    """The configuration cannot be used. The message names the YAML path when there is one."""


class RequestError(LanewayError):
    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False
    requested: bool = False
    """The request's own doing, not the deployment's: an upstream's refusal of something the
    request named (a model id a wildcard passed through, an object by id), or a timeout cut
    short by the request's deadline. It does not count towards a cooldown (`outcome_of`), so
    one caller cannot take a deployment away from everyone."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.retry_after = retry_after
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error body for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code if self.code is not None else str(self.status),
            }
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class BadRequest(RequestError):
    status = 400
    type = "invalid_request_error"


class ContextWindowExceeded(BadRequest):
    code = "context_length_exceeded"


class ContentPolicyViolation(BadRequest):
    code = "content_policy_violation"


class BudgetExceeded(BadRequest):
    type = "budget_exceeded"
    code = "budget_exceeded"


class AuthenticationFailed(RequestError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    status = 403
    type = "permission_error"


class NotFound(RequestError):
    status = 404
    type = "not_found_error"
    code = "model_not_found"


class RequestTimeout(RequestError):
    status = 408
    type = "timeout"
    code = "request_timeout"
    retryable = True


class RateLimited(RequestError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class QueueFull(RateLimited):
    code = "queue_full"
    retryable = False


class TenantLimited(RateLimited):
    """The caller's key or team is over its own limit: another deployment would not help."""

    retryable = False


class UpstreamError(RequestError):
    status = 502
    type = "api_error"

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # Server-side failures may succeed on another try or another deployment.
        self.retryable = self.status >= 500 or self.status in (408, 409, 429)


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class ServiceUnavailable(RequestError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


class LeaseLost(ServiceUnavailable):
    """An admission that may no longer hold its slot (this instance was paused past its lease)
    was not sent; the engine asks for capacity again while the request's deadline allows."""


class ClientDisconnected(RequestError):
    """Nobody reads this answer; the status is for logs and metrics."""

    status = 499
    type = "client_disconnected"
    code = "client_disconnected"


class InternalError(RequestError):
    status = 500
    type = "internal_error"


_BY_STATUS: dict[int, type[RequestError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    408: RequestTimeout,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
}


def echoed(text: str, limit: int = 200) -> str:
    """Client-sent text (a model name, an id) as an error message repeats it: cut short when
    it is longer than any real one, so an absurd value is not sent back whole."""
    return text if len(text) <= limit else text[:limit] + "…"


def error_for_status(status: int, message: str, **kwargs: Any) -> RequestError:
    """The laneway error for an upstream's HTTP status. A client error (400-499) keeps its
    status. A server error is the upstream's, not laneway's, so the client hears what a gateway
    says of a bad upstream: 502, or 503 and 504 as they came; "overloaded" (529) is a retryable
    503. Anything else cannot be a client's status and becomes a 502 too."""
    if status == 529:
        kwargs.setdefault("code", "overloaded")
        return UpstreamError(message, status=503, **kwargs)
    if status >= 500 and status not in (502, 503, 504):
        return UpstreamError(f"{message} (the upstream answered HTTP {status})", **kwargs)
    if not 400 <= status <= 599:
        return UpstreamError(message, **kwargs)
    cls = _BY_STATUS.get(status, UpstreamError)
    if cls is NotFound:
        kwargs.setdefault("code", "upstream_not_found")
    return cls(message, status=status, **kwargs)


# Things that look like credentials: bearer tokens, sk-... keys, AWS access key ids,
# and "key=..."/"api-key: ..." pairs. Upstreams sometimes echo a key back in an error.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}"),
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|secret|token|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets and anything shaped like a credential from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + "[redacted]", text)
    return text
