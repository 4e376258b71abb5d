"""A loopback upstream that answers with exactly the bytes a test scripts, for replies no real
HTTP server framework would send: a status of 999, a redirect, a body that never ends an SSE
event, JSON of the wrong shape, a body larger than any limit.

`RawUpstream` runs its asyncio server on a thread of the test process, so a gateway process and
an adapter called in the test's own event loop can both use it. Replies are chosen by the
`model` in the request's JSON body (or, failing that, a scripted key found in the request
path): `script(key, reply)` where `reply` is the whole raw response as bytes, or an async
function given the stream writer (for bodies sent piece by piece).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]

__all__ = ["RawUpstream", "http_response"]


def http_response(status: int | str, body: bytes | Any = b"", *,
                  content_type: str = "application/json", headers: str = "") -> bytes:
    """A raw HTTP/1.1 response; a non-bytes body is sent as JSON."""
    if not isinstance(body, bytes):
        body = orjson.dumps(body)
    return (f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n{headers}\r\n").encode() + body


class RawUpstream:
    def __init__(self) -> None:
        self.replies: dict[str, bytes | Writer] = {}
        self.requests: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        """An OpenAI-style api_base."""
        return f"{self.base}/v1"

    def script(self, key: str, reply: bytes | Writer) -> None:
        self.replies[key] = reply

    def stop(self) -> None:
        """Close the server and end every open connection's handler before the loop closes, so
        no handler is left to be finalised later against a closed loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def __enter__(self) -> RawUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server thread -------------------------------------------------------------------
    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        started.set()
        self._loop.run_forever()

    def _reply_for(self, head: bytes, body: bytes) -> bytes | Writer:
        try:
            model = orjson.loads(body).get("model")
        except (orjson.JSONDecodeError, AttributeError):
            model = None
        if isinstance(model, str) and model in self.replies:
            return self.replies[model]
        path = head.split(b" ", 2)[1].decode("latin-1") if b" " in head else ""
        for key, reply in self.replies.items():
            if key in path:
                return reply
        return http_response(404, {"error": {"message": f"nothing scripted for {model!r}"}})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                reply = self._reply_for(head, body)
                if isinstance(reply, bytes):
                    writer.write(reply)
                    await writer.drain()
                else:
                    await reply(writer)
                    break  # a scripted writer decides the framing: end the connection after
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def wildcard_config(raw: RawUpstream, provider: str, api_key: str) -> dict[str, Any]:
    """A gateway config whose one deployment, `hostile/*` → `<provider>/*` on `raw`, serves
    every scripted reply (the reply is picked by the model name after `hostile/`). Failures
    must not cool it down for the tests that follow, and nothing is retried."""
    return {"model_list": [{"model_name": "hostile/*", "litellm_params": {
        "model": f"{provider}/*", "api_base": raw.url, "api_key": api_key}}],
        "router_settings": {"num_retries": 0, "allowed_fails": 100000, "cooldown_time": 0.01,
                            "max_cooldown_seconds": 0.01}}
