"""A TCP proxy between gateways and Redis that misbehaves on command, as a sick network or cache
node does. It runs its own event loop in a thread; switches apply to every connection at once:

- `delay(s)`          Redis' replies arrive `s` seconds late (latency, a slow node)
- `stall()`           replies are held back (Redis did the work; nobody hears) until `heal()`
- `drop_replies()`    a connection is cut the moment a reply arrives, before the client sees
                      it: the command ran, its caller never learns (mid-pipeline drops)
- `blackhole()`       bytes are accepted and never answered nor forwarded, on the connections
                      open now and on new ones; such connections stay dead after `heal()`, as
                      a TCP connection a middlebox forgot would
- `heal()`            back to a clean pipe for new bytes (held replies are delivered)

`url` is the Redis URL to give the gateways. Counters (`connections`, `dropped`) let a test see
that the fault really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)  # kept in a set, by identity
class _Pipe:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    dead: bool = False
    """Black-holed: nothing passes either way any more."""
    held: list[bytes] = field(default_factory=list)


class RedisFaultProxy:
    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.port = 0
        self.mode = "clean"
        self.latency = 0.0
        self.connections = 0
        self.dropped = 0
        self._pipes: set[_Pipe] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="redis-fault-proxy")
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    # -- switches (called from the test's thread) -------------------------------------------
    def delay(self, seconds: float) -> None:
        self._call(self._set, "clean", seconds)

    def stall(self) -> None:
        self._call(self._set, "stall", 0.0)

    def drop_replies(self) -> None:
        self._call(self._set, "drop", 0.0)

    def blackhole(self) -> None:
        self._call(self._set, "blackhole", 0.0)

    def heal(self) -> None:
        self._call(self._set, "clean", 0.0)

    def cut_all(self) -> None:
        """Close every open connection now (a node restart, a failover)."""
        self._call(self._cut_all)

    @contextlib.contextmanager
    def fault(self, name: str, *args: Any) -> Iterator[None]:
        """`with proxy.fault("stall"): ...` — the fault for the block, healed after it."""
        getattr(self, name)(*args)
        try:
            yield
        finally:
            self.heal()

    # -- life --------------------------------------------------------------------------------
    def start(self) -> RedisFaultProxy:
        self._thread.start()
        self._call(self._listen)
        return self

    def stop(self) -> None:
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> RedisFaultProxy:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        future: Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(10)

    # -- inside the proxy's loop -----------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()

    def _set(self, mode: str, latency: float) -> None:
        self.mode, self.latency = mode, latency
        if mode == "blackhole":
            for pipe in self._pipes:
                pipe.dead = True
        if mode == "clean":
            for pipe in self._pipes:
                held, pipe.held = pipe.held, []
                if not pipe.dead:
                    for data in held:
                        pipe.client.write(data)

    def _cut_all(self) -> None:
        for pipe in list(self._pipes):
            pipe.client.transport.abort()
            pipe.server.transport.abort()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe(writer, up_writer, dead=self.mode == "blackhole")
        self._pipes.add(pipe)
        try:
            await asyncio.gather(self._upstream(reader, pipe), self._downstream(up_reader, pipe))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._pipes.discard(pipe)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _upstream(self, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        """Client to Redis: forwarded unless black-holed."""
        while data := await reader.read(65536):
            if not pipe.dead:
                pipe.server.write(data)
        pipe.server.transport.abort()

    async def _downstream(self, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        """Redis to client: where most faults happen. With latency, each reply is delivered
        `latency` after it arrived (in order), so a pipeline stays a pipeline."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(queue, pipe))
        try:
            while data := await reader.read(65536):
                queue.put_nowait((asyncio.get_running_loop().time() + self.latency, data))
            await queue.join()
        finally:
            deliver.cancel()
            pipe.client.transport.abort()

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]], pipe: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            queue.task_done()
            if pipe.dead:
                continue
            if self.mode == "stall":
                pipe.held.append(data)
            elif self.mode == "drop":
                self.dropped += 1
                pipe.client.transport.abort()
                pipe.server.transport.abort()
            else:
                pipe.client.write(data)


def start_fault_proxy(redis_port: int) -> RedisFaultProxy:
    return RedisFaultProxy(redis_port).start()
