"""Loopback HTTP receivers for what the gateway sends out: Langfuse ingestion batches, webhook
events and Slack messages. Each is a real HTTP server on 127.0.0.1 (a thread in the test
process) that records every request and answers the way the real service does.

    with langfuse_receiver() as lf:
        ...                                   # point LANGFUSE_HOST at lf.url
        lf.wait_for(1)                        # block until one POST arrived
        lf.received[0].json["batch"]
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Answer = tuple[int, bytes, str]
"""(status, body, content type)"""


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    """When it arrived (time.monotonic() of the test process)."""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    answer: Callable[[Received], Answer]
    delay: float = 0.0
    """Seconds to wait before answering (a slow receiver)."""
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                got = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                               self.rfile.read(length))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, body, ctype = receiver.answer(got)
                with receiver._cond:
                    receiver.received.append(got)
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # how many POSTs arrived (for other processes)
                body = orjson.dumps({"received": len(receiver.received)})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` requests arrived; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} request(s), got "
                                         f"{len(self.received)} within {timeout}s")
                self._cond.wait(left)
            return list(self.received)

    def clear(self) -> None:
        with self._cond:
            self.received.clear()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _langfuse_answer(got: Received) -> Answer:
    """Langfuse's ingestion API: 207 with one success per event of the batch."""
    if got.path != "/api/public/ingestion":
        return 404, b'{"message": "not found"}', "application/json"
    if not got.headers.get("authorization", "").startswith("Basic "):
        return 401, b'{"message": "unauthorized"}', "application/json"
    events = got.json.get("batch") or []
    body = {"successes": [{"id": e.get("id"), "status": 201} for e in events], "errors": []}
    return 207, orjson.dumps(body), "application/json"


def langfuse_receiver(delay: float = 0.0) -> Receiver:
    return Receiver(_langfuse_answer, delay=delay).start()


def webhook_receiver(status: int = 200, delay: float = 0.0) -> Receiver:
    return Receiver(lambda got: (status, b"{}", "application/json"), delay=delay).start()


def slack_receiver() -> Receiver:
    """Slack incoming webhooks answer a plain `ok`."""
    return Receiver(lambda got: (200, b"ok", "text/plain")).start()


@contextlib.contextmanager
def receivers() -> Iterator[tuple[Receiver, Receiver, Receiver]]:
    """(langfuse, webhook, slack), stopped on exit."""
    lf, wh, sl = langfuse_receiver(), webhook_receiver(), slack_receiver()
    try:
        yield lf, wh, sl
    finally:
        for r in (lf, wh, sl):
            r.stop()
