"""Where tenant records physically live: a few primitives, in Redis or in process.

The store (`store.py`) is written once over these: every multi-step operation (an alias claim,
an update, a delete) is a sequence of them, each atomic on its own — a compare-and-set of one
value, or one sorted-set command on one index. In Redis each goes to the node owning its key's
slot, so the layout works on Redis Cluster; they are management steps, never on the request path
(requests read a record with one `get`, usually from the cache).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.state.redis_store import RedisState

__all__ = ["ANY", "MemoryRecords", "RecordBackend", "RedisRecords"]

ANY = b"*"
"""`cas(name, ANY, new)` writes whatever the value was."""

NoticeListener = Callable[[str], None]


class RecordBackend(Protocol):
    async def get(self, name: str) -> bytes | None: ...

    async def cas(self, name: str, expected: bytes | None, new: bytes | None) -> bool:
        """Set `name` to `new` (None: delete it) only if it is `expected` (None: absent;
        ANY: anything). True when written."""

    async def index_add(self, index: str, member: str, score: float) -> None: ...

    async def index_remove(self, index: str, member: str) -> None: ...

    async def index_page(self, index: str, offset: int, count: int) -> list[str]:
        """Members in score order (then by name), from `offset`."""

    async def index_count(self, index: str) -> int: ...

    async def notify(self, text: str) -> None:
        """Tell every instance's listener (this one's too, possibly later)."""

    def listen(self, listener: NoticeListener) -> None:
        """Receive every instance's notices; may be called again (it registers once)."""


class MemoryRecords:
    """One process: dicts. The event loop never switches inside a method, so each is atomic."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self._indexes: dict[str, dict[str, float]] = {}
        self._listeners: list[NoticeListener] = []

    async def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    async def cas(self, name: str, expected: bytes | None, new: bytes | None) -> bool:
        current = self.values.get(name)
        if expected is not ANY and current != expected:
            return False
        if new is None:
            self.values.pop(name, None)
        else:
            self.values[name] = new
        return True

    async def index_add(self, index: str, member: str, score: float) -> None:
        self._indexes.setdefault(index, {})[member] = score

    async def index_remove(self, index: str, member: str) -> None:
        members = self._indexes.get(index)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._indexes[index]

    async def index_page(self, index: str, offset: int, count: int) -> list[str]:
        members = self._indexes.get(index, {})
        # As ZRANGE orders them: by score, equal scores by member.
        ordered = sorted(members, key=lambda m: (members[m], m))
        return ordered[offset:offset + count]

    async def index_count(self, index: str) -> int:
        return len(self._indexes.get(index, {}))

    async def notify(self, text: str) -> None:
        for listener in self._listeners:
            listener(text)

    def listen(self, listener: NoticeListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRecords:
    """Redis, over the state backend's own connections (and its pub/sub subscription, which
    carries the notices next to the wake-ups)."""

    def __init__(self, state: RedisState) -> None:
        self._state = state

    async def get(self, name: str) -> bytes | None:
        value = await self._state.command(name, "GET", name)
        return value if value is None or isinstance(value, bytes) else _text(value).encode()

    async def cas(self, name: str, expected: bytes | None, new: bytes | None) -> bool:
        reply = await self._state.script(
            "tenant_cas", [name], [b"" if expected is None else expected,
                                   b"" if new is None else new])
        return bool(int(reply))

    async def index_add(self, index: str, member: str, score: float) -> None:
        await self._state.command(index, "ZADD", index, repr(float(score)), member)

    async def index_remove(self, index: str, member: str) -> None:
        await self._state.command(index, "ZREM", index, member)

    async def index_page(self, index: str, offset: int, count: int) -> list[str]:
        if count <= 0:
            return []
        reply = await self._state.command(index, "ZRANGE", index, offset, offset + count - 1)
        return [_text(m) for m in reply]

    async def index_count(self, index: str) -> int:
        return int(await self._state.command(index, "ZCARD", index))

    async def notify(self, text: str) -> None:
        await self._state.notify(text)

    def listen(self, listener: NoticeListener) -> None:
        self._state.listen_for_notices(listener)
