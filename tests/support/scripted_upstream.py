"""A loopback HTTP server whose every answer is written by the test, byte for byte.

    async with scripted_upstream({"bad-json": raw(200, b"{not json"),
                                  "hang": hang()}) as up:
        ... api_base=up.url ...

The request's JSON `model` picks the script. A script is an async function given the parsed
request body and the socket's writer; `raw`, `sse`, `hang` and `drop` build the usual ones,
`reply(Reply(...))` one described field by field (for answers a test generates: any status,
headers, framing, a lying content-length, pauses, how it ends), and `sequence(a, b)` answers
the first arrival with `a`, the next with `b` (the last one repeats).
It runs on the test's own event loop, so a test can drive the gateway engine in process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Script = Callable[[dict[str, Any], asyncio.StreamWriter], Awaitable[None]]


def raw(status: int, body: bytes, headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json") -> Script:
    async def answer(_: dict[str, Any], w: asyncio.StreamWriter) -> None:
        head = [f"HTTP/1.1 {status} X", f"content-type: {content_type}",
                f"content-length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
        w.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await w.drain()

    return answer


def sse(events: Iterable[bytes], *, then_drop: bool = False, gap: float = 0.0) -> Script:
    """A chunked text/event-stream answer of the given raw event blocks."""
    async def answer(_: dict[str, Any], w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n")
        for event in events:
            w.write(b"%x\r\n%s\r\n" % (len(event), event))
            await w.drain()
            if gap:
                await asyncio.sleep(gap)
        if then_drop:
            w.transport.abort()
            return
        w.write(b"0\r\n\r\n")
        await w.drain()

    return answer


def hang() -> Script:
    """Never answer (until the client gives up)."""
    async def answer(_: dict[str, Any], w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    return answer


def drop() -> Script:
    """Close the connection without a byte of answer."""
    async def answer(_: dict[str, Any], w: asyncio.StreamWriter) -> None:
        w.transport.abort()

    return answer


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, described so that a test (or a property-based generator) can build any
    answer an upstream could send, well-formed or not."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = "application/json"
    pieces: tuple[bytes, ...] = ()
    """The body, written in these pieces (one write and drain each)."""
    framing: Literal["length", "chunked", "close"] = "length"
    """`length`: a content-length header; `chunked`: one chunk per piece; `close`: neither,
    the body ends when the connection closes."""
    length_lie: int = 0
    """Added to the true content-length (a lie when not 0)."""
    delay: float = 0.0
    """Seconds before the status line."""
    gap: float = 0.0
    """Seconds between pieces."""
    ending: Literal["end", "drop", "hang"] = "end"
    """After the last piece: finish properly, drop the connection, or say nothing more."""


def reply(spec: Reply) -> Script:
    async def answer(_: dict[str, Any], w: asyncio.StreamWriter) -> None:
        if spec.delay:
            await asyncio.sleep(spec.delay)
        head = [f"HTTP/1.1 {spec.status:03d} X"]
        if spec.content_type is not None:
            head.append(f"content-type: {spec.content_type}")
        if spec.framing == "length":
            size = sum(len(p) for p in spec.pieces) + spec.length_lie
            head.append(f"content-length: {max(size, 0)}")
        elif spec.framing == "chunked":
            head.append("transfer-encoding: chunked")
        else:
            head.append("connection: close")
        head += [f"{k}: {v}" for k, v in spec.headers]
        w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await w.drain()
        for i, piece in enumerate(spec.pieces):
            if i and spec.gap:
                await asyncio.sleep(spec.gap)
            if spec.framing == "chunked":
                if piece:  # an empty chunk would end the body
                    w.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                w.write(piece)
            await w.drain()
        if spec.ending == "drop":
            w.transport.abort()
        elif spec.ending == "hang":
            await asyncio.sleep(3600)
        elif spec.framing == "chunked":
            w.write(b"0\r\n\r\n")
            await w.drain()
        elif spec.framing == "close":
            w.close()

    return answer


def sequence(*scripts: Script) -> Script:
    """Answer the n-th arrival with the n-th script; the last one answers all later arrivals."""
    calls = 0

    async def answer(body: dict[str, Any], w: asyncio.StreamWriter) -> None:
        nonlocal calls
        script = scripts[min(calls, len(scripts) - 1)]
        calls += 1
        await script(body, w)

    return answer


def completion(text: str = "ok", usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}]}
    body["usage"] = usage if usage is not None else {
        "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    return orjson.dumps(body)


def chunk(text: str) -> bytes:
    return b"data: " + orjson.dumps({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + b"\n\n"


@dataclass
class ScriptedUpstream:
    scripts: dict[str, Script]
    port: int = 0
    arrivals: dict[str, int] = field(default_factory=dict)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self._writers.add(w)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = orjson.loads(await r.readexactly(length)) if length else {}
                model = str(body.get("model", ""))
                self.arrivals[model] = self.arrivals.get(model, 0) + 1
                await self.scripts[model](body, w)
                if w.transport.is_closing():
                    return
        with contextlib.suppress(Exception):
            w.close()


@contextlib.asynccontextmanager
async def scripted_upstream(scripts: dict[str, Script]) -> AsyncIterator[ScriptedUpstream]:
    up = ScriptedUpstream(scripts)
    server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        server.close()
        for w in up._writers:
            w.transport.abort()
