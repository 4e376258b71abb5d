"""The one place where errors become HTTP responses: an OpenAI error body, or on the Anthropic
Messages routes (`/v1/messages...`) Anthropic's (`{"type": "error", "error": {"type",
"message"}}`), which Anthropic's clients read."""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from router.errors import InternalError, RequestError

log = logging.getLogger("laneway.http")

__all__ = ["MAX_RETRY_AFTER", "anthropic_error_body", "error_response", "install_error_handlers",
           "is_anthropic_path", "retry_after_header"]

MAX_RETRY_AFTER = 3600
"""Seconds: the longest Retry-After laneway sends (an upstream may ask for anything)."""

_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               405: "invalid_request_error"}


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 408: "timeout_error",
                    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error",
                    504: "timeout_error", 529: "overloaded_error"}


def is_anthropic_path(path: str) -> bool:
    """The routes of Anthropic's Messages API, whose errors take Anthropic's shape."""
    return path.startswith(("/v1/messages", "/messages")) and path.removeprefix(
        "/v1").removeprefix("/messages") in ("", "/count_tokens")


def anthropic_error_body(status: int, message: str, request_id: str | None = None
                         ) -> dict[str, object]:
    kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else
                                "invalid_request_error")
    body: dict[str, object] = {"type": "error", "error": {"type": kind, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def error_response(exc: RequestError, headers: dict[str, str] | None = None, *,
                   path: str | None = None) -> Response:
    """The response for `exc`; `path` is the request's (it picks the body's shape)."""
    out = {**exc.headers, **(headers or {})}
    if exc.status in (429, 503):  # a client told to slow down is told for how long
        out["retry-after"] = retry_after_header(
            exc.retry_after if exc.retry_after is not None else 1.0)
    if path is not None and is_anthropic_path(path):
        body: object = anthropic_error_body(exc.status, exc.message, out.get("x-request-id"))
    else:
        body = exc.body()
    return Response(orjson.dumps(body), status_code=exc.status, headers=out,
                    media_type="application/json")


def retry_after_header(seconds: float) -> str:
    """A whole number of seconds from 1 to MAX_RETRY_AFTER, whatever `seconds` is (nan, inf,
    negative or huge included): clients sleep on this value."""
    if math.isnan(seconds):
        return "1"
    return str(max(1, min(MAX_RETRY_AFTER, math.ceil(min(seconds, MAX_RETRY_AFTER)))))


def _plain(status: int, message: str, type_: str, code: str, path: str = "") -> Response:
    body: object = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    if is_anthropic_path(path):
        body = anthropic_error_body(status, message)
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, exc: RequestError) -> Response:
        return error_response(exc, _request_id(request), path=request.url.path)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "Error"
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return _plain(exc.status_code, message, kind, str(exc.status_code), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _plain(400, "The request is not valid.", "invalid_request_error", "400",
                      request.url.path)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The details go to the log (without request bodies); the client gets no stack trace.
        log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(InternalError("Internal error in the gateway."),
                              _request_id(request), path=request.url.path)


def _request_id(request: Request) -> dict[str, str]:
    rid = getattr(request.state, "request_id", None)
    return {"x-request-id": rid} if rid else {}
