"""The one place where errors become HTTP responses, always with an OpenAI error body."""

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

__all__ = ["MAX_RETRY_AFTER", "error_response", "install_error_handlers", "retry_after_header"]

MAX_RETRY_AFTER = 3600
"""Seconds: the longest Retry-After laneway sends (an upstream may ask for anything)."""

_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
               405: "invalid_request_error"}


def error_response(exc: RequestError, headers: dict[str, str] | None = None) -> Response:
    out = {**exc.headers, **(headers or {})}
    if exc.status in (429, 503):  # a client told to slow down is told for how long
        out["retry-after"] = retry_after_header(
            exc.retry_after if exc.retry_after is not None else 1.0)
    return Response(orjson.dumps(exc.body()), status_code=exc.status, headers=out,
                    media_type="application/json")


def retry_after_header(seconds: float) -> str:
    """A whole number of seconds from 1 to MAX_RETRY_AFTER, whatever `seconds` is (nan, inf,
    negative or huge included): clients sleep on this value."""
    if math.isnan(seconds):
        return "1"
    return str(max(1, min(MAX_RETRY_AFTER, math.ceil(min(seconds, MAX_RETRY_AFTER)))))


def _plain(status: int, message: str, type_: str, code: str) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, exc: RequestError) -> Response:
        return error_response(exc, _request_id(request))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "Error"
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return _plain(exc.status_code, message, kind, str(exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _plain(400, "The request is not valid.", "invalid_request_error", "400")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The details go to the log (without request bodies); the client gets no stack trace.
        log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(InternalError("Internal error in the gateway."),
                              _request_id(request))


def _request_id(request: Request) -> dict[str, str]:
    rid = getattr(request.state, "request_id", None)
    return {"x-request-id": rid} if rid else {}
