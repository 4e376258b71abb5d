"""Single small requests outside a gateway's request path (reading a config object, asking a
metadata endpoint for credentials) over the same lean client, so the cold path never imports
httpx or an SDK. `SyncClient` drives them from synchronous code such as `load_config`."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from router.httpclient.client import UpstreamClient
from router.httpclient.errors import BadResponse

__all__ = ["Reply", "SyncClient", "Unreachable", "request"]

T = TypeVar("T")
_MAX_BYTES = 16 * 1024 * 1024  # a config (or a credentials document) is far smaller


class Unreachable(Exception):
    """No usable HTTP answer: refused, timed out, or not HTTP."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class _Timeout:  # the two fields of httpx.Timeout the client reads
    connect: float
    read: float


async def request(client: UpstreamClient, method: str, url: str, *,
                  headers: Mapping[str, str] | None = None, body: bytes = b"",
                  timeout: float = 10.0) -> Reply:
    limits = cast(Any, _Timeout(connect=timeout, read=timeout))
    try:
        async with asyncio.timeout(timeout * 2):
            async with client.stream(method, url, content=body, headers=headers or {},
                                     timeout=limits) as response:
                data = await response.aread()
                return Reply(response.status_code,
                             {k.lower(): v for k, v in response.headers.items()}, data)
    except (OSError, TimeoutError, BadResponse) as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from None
    except Exception as exc:
        if type(exc).__module__.partition(".")[0] == "httpx":  # the client's network errors
            raise Unreachable(str(exc) or type(exc).__name__) from None
        raise


class SyncClient:
    """A lean client on a private event loop, for code that is not async (`load_config`, a
    reload check in a worker thread). The loop is never made any thread's current one, so the
    loop the caller (or Mangum) uses is untouched; called from inside a running loop (a test, a
    notebook), the work runs on a thread of its own. One instance reuses its connections."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: UpstreamClient | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def run(self, work: Callable[[UpstreamClient], Coroutine[Any, Any, T]]) -> T:
        if self._loop is None or self._client is None:
            self._loop = asyncio.new_event_loop()
            self._client = UpstreamClient(max_idle_per_host=4, max_response_bytes=_MAX_BYTES)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(work(self._client))
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1)
        return self._pool.submit(self._loop.run_until_complete, work(self._client)).result()

    def close(self) -> None:
        if self._loop is not None and self._client is not None:
            client = self._client

            async def shut() -> None:
                await client.aclose()

            try:
                self.run(lambda _: shut())
            finally:
                self._loop.close()
        if self._pool is not None:
            self._pool.shutdown()
        self._loop = self._client = self._pool = None

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
