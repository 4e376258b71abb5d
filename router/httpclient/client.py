"""A lean pooled HTTP/1.1 client for upstream calls.

It offers the slice of `httpx.AsyncClient` that the provider adapters use (`post` and `stream`,
raising httpx's exception classes) at a fraction of the cost: a keep-alive pool of asyncio
connections parsed by httptools, about 0.1 ms of CPU per call where httpx needs over 1 ms. That
difference is most of a gateway's own overhead. Anything it does not do itself (HTTP proxies from
the environment) it hands to an httpx client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from router.httpclient.connection import Connection, Response
from router.httpclient.errors import DEFAULT_MAX_RESPONSE_BYTES, ResponseTooLarge, http_errors

if TYPE_CHECKING:
    import httpx

__all__ = ["UpstreamClient"]

_USER_AGENT = "laneway/0.1"
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


@lru_cache(maxsize=1024)
def _target(url: str) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, Host header, request target) of a URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise http_errors().UnsupportedProtocol(f"cannot send to {scheme or 'a relative'} URL")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host_header = parts.hostname if port == default else f"{parts.hostname}:{port}"
    if ":" in parts.hostname and not host_header.startswith("["):  # IPv6 literal
        host_header = f"[{parts.hostname}]" + (f":{port}" if port != default else "")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port, host_header, target


def _request_bytes(method: str, host: str, target: str, headers: Mapping[str, str],
                   content: bytes) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}", f"user-agent: {_USER_AGENT}",
             f"content-length: {len(content)}"]
    for name, value in headers.items():
        low = name.lower()
        if low not in ("host", "content-length", "user-agent"):
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content


def _wants_proxy() -> bool:
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS)


class _Buffered:
    """A fully read httpx response, as `post` returns it on the proxy path."""

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content


class UpstreamClient:
    def __init__(self, *, max_idle_per_host: int = 256,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._max_idle = max_idle_per_host
        self.max_response_bytes = max_response_bytes
        """Most bytes of a non-streamed body, or of one event of a stream."""
        self._ssl: ssl.SSLContext | None = None
        self._fallback: httpx.AsyncClient | None = None
        self._use_httpx = _wants_proxy()

    # -- the httpx-like surface --------------------------------------------------------------
    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str],
                   timeout: httpx.Timeout) -> Response | _Buffered:
        if self._use_httpx:
            async with self._httpx().stream("POST", url, content=content, headers=headers,
                                            timeout=timeout) as resp:
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise ResponseTooLarge(self.max_response_bytes)
                    chunks.append(chunk)
            return _Buffered(resp.status_code, resp.headers, b"".join(chunks))
        async with self._exchange("POST", url, content, headers, timeout) as response:
            await response.aread()
            return response

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, content: bytes,
                     headers: Mapping[str, str], timeout: httpx.Timeout,
                     deadline: float | None = None,
                     ) -> AsyncIterator[Response | httpx.Response]:
        """A streamed exchange. `deadline` (time.monotonic()) bounds every read of the body,
        so a stream kept alive by comments still ends with its request."""
        if self._use_httpx:
            async with self._httpx().stream(method, url, content=content, headers=headers,
                                            timeout=timeout) as resp:
                yield resp
            return
        async with self._exchange(method, url, content, headers, timeout) as response:
            response.deadline = deadline
            yield response

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()

    # -- internals ---------------------------------------------------------------------------
    def _httpx(self) -> httpx.AsyncClient:
        if self._fallback is None:
            import httpx

            self._fallback = httpx.AsyncClient(trust_env=True, follow_redirects=False)
        return self._fallback

    @contextlib.asynccontextmanager
    async def _exchange(self, method: str, url: str, content: bytes,
                        headers: Mapping[str, str], timeout: httpx.Timeout
                        ) -> AsyncIterator[Response]:
        scheme, host, port, host_header, target = _target(url)
        key = (scheme, host, port)
        request = _request_bytes(method, host_header, target, headers, content)
        conn, response = await self._send(key, request, timeout)
        try:
            yield response
        finally:
            if conn.reusable:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self._max_idle:
                    idle.append(conn)
                else:
                    conn.close()
            else:
                conn.close()  # unread or failed: the connection's state is unknown

    async def _send(self, key: tuple[str, str, int], request: bytes,
                    timeout: httpx.Timeout) -> tuple[Connection, Response]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            response = conn.send(request, self.max_response_bytes)
            try:
                await response.wait_headers(timeout.read)
            except http_errors().RemoteProtocolError:
                if not conn.received_any:
                    # The upstream closed this idle connection as we reused it: the request
                    # was never read, so sending it again on a new connection is safe.
                    conn.close()
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            response.read_timeout = timeout.read
            return conn, response
        conn = await self._connect(key, timeout.connect)
        response = conn.send(request, self.max_response_bytes)
        try:
            await response.wait_headers(timeout.read)
        except BaseException:
            conn.close()
            raise
        response.read_timeout = timeout.read
        return conn, response

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = {"ssl": self._ssl, "server_hostname": host}
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(Connection, host, port, **tls)
        except TimeoutError:
            raise http_errors().ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            reason = exc.strerror or exc
            raise http_errors().ConnectError(f"cannot connect to {host}:{port}: {reason}"
                                             ) from None
        return conn
