"""One HTTP/1.1 connection to an upstream: an asyncio protocol fed to httptools' parser.

A connection carries one request at a time. Its response's body is handed over chunk by chunk as
it arrives, so streams are relayed without buffering.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections import deque
from collections.abc import AsyncIterator

import httptools

from router.httpclient.errors import (
    DEFAULT_MAX_RESPONSE_BYTES,
    InvalidResponse,
    ResponseTooLarge,
    http_errors,
)

__all__ = ["Connection", "Response"]


class Response:
    """The part of `httpx.Response` the adapters use: status, headers, bytes."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self._chunks: deque[bytes] = deque()
        self._arrived = asyncio.Event()
        self._headers_done = asyncio.get_running_loop().create_future()
        self.complete = False
        self.error: BaseException | None = None
        self.read_timeout: float | None = None
        self.deadline: float | None = None
        """time.monotonic() after which no read may wait any longer (the request's end)."""
        self._decoder: zlib._Decompress | None = None
        self._content: bytes | None = None
        self.max_bytes = DEFAULT_MAX_RESPONSE_BYTES
        """The most bytes `aread` takes, and (read by the stream framers) one event may have."""

    # -- fed by the connection ---------------------------------------------------------------
    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.status_code, self.headers = status, headers
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
        if not self._headers_done.done():
            self._headers_done.set_result(None)

    def _body(self, data: bytes) -> None:
        if self.complete:  # failed part-way through a read: the rest is dropped
            return
        if self._decoder is not None:
            # Bounded, so that a few compressed bytes cannot expand into gigabytes at once.
            data = self._decoder.decompress(data, self.max_bytes + 1)
            if len(data) > self.max_bytes:
                self._conn._fail(ResponseTooLarge(self.max_bytes))
                return
        if data:
            self._chunks.append(data)
            self._arrived.set()

    def _finish(self, error: BaseException | None = None) -> None:
        if self.complete:
            return
        self.complete, self.error = True, error
        self._arrived.set()
        if not self._headers_done.done():
            if error is not None:
                self._headers_done.set_exception(error)
                self._headers_done.exception()  # retrieved here; raised to whoever awaits
            else:
                self._headers_done.set_result(None)

    # -- read by the caller ------------------------------------------------------------------
    async def wait_headers(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._headers_done)
        except TimeoutError:
            raise http_errors().ReadTimeout("no response headers in time") from None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                yield self._chunks.popleft()
            if self.complete:
                if self.error is not None:
                    raise self.error
                return
            self._arrived.clear()
            await self._wait_for_data()

    async def _wait_for_data(self) -> None:
        # A bare timer rather than asyncio.timeout(): this runs once per stream chunk, and the
        # timeout context costs several times more than the wait itself.
        if self.read_timeout is None and self.deadline is None:
            await self._arrived.wait()
            return
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            self._arrived.set()

        loop = asyncio.get_running_loop()
        # asyncio's clock is time.monotonic(), so the deadline is a loop time as it is.
        until = loop.time() + self.read_timeout if self.read_timeout is not None else math.inf
        if self.deadline is not None:
            until = min(until, self.deadline)
        timer = loop.call_at(until, expire)
        try:
            await self._arrived.wait()
        finally:
            timer.cancel()
        if expired and not self._chunks and not self.complete:
            raise http_errors().ReadTimeout("the upstream stopped sending")

    async def aread(self) -> bytes:
        if self._content is None:
            limit = self.max_bytes
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge(limit)  # nothing of it is read: the caller drops the line
            chunks, size = [], 0
            async for chunk in self.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(limit)
                chunks.append(chunk)
            self._content = b"".join(chunks)
        return self._content

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the body has not been read")
        return self._content


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.response: Response | None = None
        self.received_any = False
        self._header_list: list[tuple[str, str]] = []
        self._interim = False  # parsing a 1xx response, which precedes the real one

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(InvalidResponse(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is None or response.complete:
            return
        if response._headers_done.done() and self._reads_until_close():
            response._finish()
        else:
            response._finish(http_errors().RemoteProtocolError(
                "the upstream closed the connection before the response was complete"))

    # -- httptools callbacks -----------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_list.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # 100 Continue, 103 Early Hints: informational, the real response follows.
            self._interim = True
            self._header_list = []
            return
        if self.response is not None:
            self.response._headers(status, dict(self._header_list))

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self.response is not None:
            self.response._finish()
        if not self.parser.should_keep_alive():
            self.close()

    # -- use ---------------------------------------------------------------------------------
    def send(self, request: bytes, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> Response:
        self.response = Response(self)
        self.response.max_bytes = max_bytes
        self._header_list = []
        self._interim = False
        self.received_any = False
        assert self.transport is not None
        self.transport.write(request)
        return self.response

    @property
    def reusable(self) -> bool:
        return (not self.closed and self.response is not None and self.response.complete
                and self.response.error is None)

    def _reads_until_close(self) -> bool:
        headers = self.response.headers if self.response else {}
        return "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", "").lower()

    def _fail(self, error: BaseException) -> None:
        if self.response is not None:
            self.response._finish(error)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
