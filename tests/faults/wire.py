"""HTTP/1.1 spoken by hand over asyncio streams, for load generators: httpx costs about 2 ms
of client CPU per request, which on two shared cores measures the client instead of the
gateways. Enough for laneway's answers: Content-Length bodies and chunked streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Connection:
    """One keep-alive connection to a gateway; it reconnects after it was closed."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: dict[str, Any], path: str = "/v1/chat/completions",
                   first_bytes_only: bool = False) -> int:
        """Send `body`, read the whole answer (or, with `first_bytes_only`, its head and first
        byte, then leave), and return its status. Cancelled, it drops the connection: the
        gateway sees its client go."""
        try:
            return await self._post(body, path, first_bytes_only)
        except BaseException:
            self.close()
            raise

    async def _post(self, body: dict[str, Any], path: str, first_bytes_only: bool) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = head.lower()
        if first_bytes_only:
            await self.reader.read(1)
            self.close()  # the client leaves mid-answer
        elif b"transfer-encoding: chunked" in headers:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            length = int(headers.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await self.reader.readexactly(length)
        if b"connection: close" in headers:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None
