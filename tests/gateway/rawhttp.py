"""Raw-socket HTTP for tests where a client library would hide what the gateway does: bodies
that lie about their length, requests that stop half-way, Host headers a client would fix."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import orjson


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def read_response(sock: socket.socket) -> RawResponse:
    """One response (Content-Length framed, as every laneway error is)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawResponse(int(status_line.split()[1]), headers, rest[:length])


def exchange(port: int, raw: bytes) -> RawResponse:
    with connect(port) as sock:
        sock.sendall(raw)
        return read_response(sock)


def seconds_until_closed(sock: socket.socket, limit: float) -> float:
    """How long until the peer closes `sock` (reading and dropping anything it sends first);
    `limit` if it is still open then."""
    start = time.monotonic()
    sock.settimeout(0.1)
    while (elapsed := time.monotonic() - start) < limit:
        try:
            if sock.recv(65536) == b"":
                return elapsed
        except TimeoutError:
            continue
        except ConnectionResetError:
            return elapsed
    return limit
