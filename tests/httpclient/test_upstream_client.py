"""The lean upstream HTTP client against real sockets: a scripted raw HTTP server on loopback
(so every framing and failure can be produced exactly), and TLS with a self-signed certificate."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from router.httpclient import UpstreamClient

pytestmark = pytest.mark.asyncio(loop_scope="function")
T = httpx.Timeout(5.0)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


class RawServer:
    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> RawServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer, self.connections)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    def url(self, path: str = "/v1/x", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}\r\n").encode() + body


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient()
    yield c
    await c.aclose()


async def test_keep_alive_reuses_one_connection(client: UpstreamClient) -> None:
    async def handler(reader, writer, n) -> None:
        while True:
            request = await read_request(reader)
            server.requests.append(request)
            writer.write(ok())
            await writer.drain()

    async with RawServer(handler) as server:
        for _ in range(3):
            r = await client.post(server.url(), content=b'{"a":1}',
                                  headers={"authorization": "Bearer k"}, timeout=T)
            assert r.status_code == 200 and r.content == b'{"ok": true}'
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"authorization: Bearer k\r\n" in first and first.endswith(b'{"a":1}')
    assert f"host: 127.0.0.1:{server.port}".encode() in first


async def test_idle_connection_closed_by_upstream_is_replaced(client: UpstreamClient) -> None:
    async def handler(reader, writer, n) -> None:
        await read_request(reader)
        writer.write(ok())  # keep-alive announced, then the server drops it anyway
        await writer.drain()

    async with RawServer(handler) as server:
        for _ in range(3):
            r = await client.post(server.url(), content=b"{}", headers={}, timeout=T)
            assert r.status_code == 200
            await asyncio.sleep(0.05)
    assert server.connections == 3


async def test_chunked_stream_arrives_piece_by_piece(client: UpstreamClient) -> None:
    release = asyncio.Event()

    async def handler(reader, writer, n) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        writer.write(b"7\r\ndata: 1\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"7\r\ndata: 2\r\n0\r\n\r\n")
        await writer.drain()

    async with RawServer(handler) as server, client.stream(
        "POST", server.url(), content=b"{}", headers={}, timeout=T
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        pieces = resp.aiter_bytes()
        assert await anext(pieces) == b"data: 1"  # before the server sent the rest
        release.set()
        assert b"".join([p async for p in pieces]) == b"data: 2"


async def test_gzip_body_and_read_until_close(client: UpstreamClient) -> None:
    packed = gzip.compress(b'{"zipped": 1}')

    async def handler(reader, writer, n) -> None:
        await read_request(reader)
        if n == 1:
            writer.write(ok(packed, "content-encoding: gzip\r\n"))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"until\": \"close\"}")
        await writer.drain()
        if n > 1:
            writer.close()

    async with RawServer(handler) as server:
        r = await client.post(server.url(), content=b"{}", headers={}, timeout=T)
        assert r.content == b'{"zipped": 1}'
        r = await client.post(server.url(), content=b"{}", headers={}, timeout=T)
        assert r.content == b'{"until": "close"}'


async def test_failures_raise_httpx_errors(client: UpstreamClient) -> None:
    async def truncated(reader, writer, n) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
        await writer.drain()

    async with RawServer(truncated) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(server.url(), content=b"{}", headers={}, timeout=T)

    async def silent(reader, writer, n) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with RawServer(silent) as server:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(server.url(), content=b"{}", headers={},
                              timeout=httpx.Timeout(5.0, read=0.2))
    port = server.port  # closed now: nothing listens there
    with pytest.raises(httpx.ConnectError):
        await client.post(f"http://127.0.0.1:{port}/", content=b"", headers={}, timeout=T)
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.post("ftp://example.com/", content=b"", headers={}, timeout=T)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
async def test_https_with_the_system_trust_store(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def handler(reader, writer, n) -> None:
        await read_request(reader)
        writer.write(ok())
        await writer.drain()

    old = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(cert)  # the default context trusts what this names
    client = UpstreamClient()
    try:
        async with RawServer(handler, tls) as server:
            r = await client.post(server.url(scheme="https"), content=b"{}", headers={},
                                  timeout=T)
            assert r.status_code == 200
    finally:
        await client.aclose()
        if old is None:
            os.environ.pop("SSL_CERT_FILE")
        else:
            os.environ["SSL_CERT_FILE"] = old
