"""AWS event-stream framing (the `application/vnd.amazon.eventstream` body of Bedrock streams).

A frame is: total length (u32), headers length (u32), CRC32 of those 8 bytes (u32), headers,
payload, CRC32 of everything before it (u32) — all big-endian. `EventStreamDecoder` takes bytes
as they arrive and hands back whole frames, checking both checksums.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = ["EventStreamDecoder", "EventStreamError", "Frame"]

_PRELUDE = 12
_MAX_FRAME = 16 * 1024 * 1024


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad length or checksum)."""


@dataclass(frozen=True, slots=True)
class Frame:
    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type") or self.headers.get(":exception-type") or "")


class EventStreamDecoder:
    """Incremental decoder: `feed(chunk)` returns the frames completed by that chunk."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= _PRELUDE:
            total, header_len, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event-stream prelude checksum mismatch")
            if not _PRELUDE + 4 <= total <= _MAX_FRAME or header_len > total - _PRELUDE - 4:
                raise EventStreamError(f"event-stream frame of invalid length {total}")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise EventStreamError("event-stream message checksum mismatch")
            headers = _headers(frame[_PRELUDE:_PRELUDE + header_len])
            frames.append(Frame(headers, frame[_PRELUDE + header_len:-4]))
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)


# value type code → (struct format, size) for the fixed-size header values
_FIXED = {2: (">b", 1), 3: (">h", 2), 4: (">i", 4), 5: (">q", 8), 8: (">q", 8)}


def _headers(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(raw):
        name_len = raw[pos]
        name = raw[pos + 1:pos + 1 + name_len].decode()
        pos += 1 + name_len
        kind = raw[pos]
        pos += 1
        value: Any
        if kind in (0, 1):
            value = kind == 0
        elif kind in _FIXED:
            fmt, size = _FIXED[kind]
            (value,) = struct.unpack_from(fmt, raw, pos)
            pos += size
        elif kind in (6, 7):
            (length,) = struct.unpack_from(">H", raw, pos)
            value = raw[pos + 2:pos + 2 + length]
            value = value.decode() if kind == 7 else bytes(value)
            pos += 2 + length
        elif kind == 9:
            value = uuid.UUID(bytes=raw[pos:pos + 16])
            pos += 16
        else:
            raise EventStreamError(f"unknown event-stream header type {kind}")
        out[name] = value
    return out
