"""The HTTP client laneway uses for upstream calls (see client.py for why it is its own)."""

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from router.httpclient.client import UpstreamClient
from router.httpclient.connection import Response

__all__ = ["Response", "UpstreamClient", "UpstreamResponse"]


class UpstreamResponse(Protocol):
    """What adapters read of a response: ours, or httpx's when a proxy routes through httpx."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
