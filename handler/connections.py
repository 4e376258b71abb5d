"""Closing connections that never finish sending a request (uvicorn, the `laneway` command).

uvicorn's only idle timeout, `timeout_keep_alive`, starts when a response is complete and is
cancelled by the next byte that arrives: a client that opens a socket and sends nothing, or
sends half a request line and stops, holds its connection for ever (slowloris). The protocol
here adds a header timeout: from the moment a connection opens, or goes idle after a response,
the client has `general_settings.request_read_timeout` seconds to complete its request headers,
or the connection is closed. (A silence inside the body is handled by handler/edge.py.)

It also bounds the request line and headers to MAX_HEADER_BYTES: httptools has no limit of its
own, and uvicorn keeps every header it parses, so within the timeout a client could otherwise
make the gateway hold as many header bytes as it can send. Past the bound uvicorn answers 400
and closes the connection.

    uvicorn.run(app, **serve_options(limits))
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from handler.limits import DEFAULT_READ_TIMEOUT, HttpLimits

__all__ = ["HeaderLimitsProtocol", "serve_options"]

MAX_HEADER_BYTES = 64 * 1024
"""The request line and headers of one request, in bytes (nginx's default is 32 KiB)."""
_ENV = "LANEWAY_REQUEST_READ_TIMEOUT"
"""Hands the timeout to uvicorn's worker processes, which import this module anew."""


def serve_options(limits: HttpLimits) -> dict[str, Any]:
    """The uvicorn options that bound slow clients."""
    os.environ[_ENV] = str(limits.read_timeout)
    return {"http": f"{__name__}:HeaderLimitsProtocol"}


class HeaderLimitsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = float(os.environ.get(_ENV) or DEFAULT_READ_TIMEOUT)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            # Raised inside a parser callback: uvicorn answers 400 and closes the connection.
            raise ValueError("request headers too large")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn armed its keep-alive timer: the connection is idle, waiting for a request
        # (no pipelined request was already parsed).
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
