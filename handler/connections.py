"""Closing connections that never finish sending a request (uvicorn, the `laneway` command).

uvicorn's only idle timeout, `timeout_keep_alive`, starts when a response is complete and is
cancelled by the next byte that arrives: a client that opens a socket and sends nothing, or
sends half a request line and stops, holds its connection for ever (slowloris). The protocol
here adds a header timeout: from the moment a connection opens, or goes idle after a response,
the client has `general_settings.request_read_timeout` seconds to complete its request headers,
or the connection is closed. (A silence inside the body is handled by handler/edge.py.)

    uvicorn.run(app, **serve_options(limits))
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from handler.limits import DEFAULT_READ_TIMEOUT, HttpLimits

__all__ = ["HeaderTimeoutProtocol", "serve_options"]

_ENV = "LANEWAY_REQUEST_READ_TIMEOUT"
"""Hands the timeout to uvicorn's worker processes, which import this module anew."""


def serve_options(limits: HttpLimits) -> dict[str, Any]:
    """The uvicorn options that bound slow clients."""
    os.environ[_ENV] = str(limits.read_timeout)
    return {"http": f"{__name__}:HeaderTimeoutProtocol"}


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = float(os.environ.get(_ENV) or DEFAULT_READ_TIMEOUT)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

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
