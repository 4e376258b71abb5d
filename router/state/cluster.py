"""Redis Cluster routing for the state client: each script goes to the node owning its slot.

A standalone Redis never redirects, so until a node answers MOVED every call goes to the node of
the configured URL and this layer costs nothing. The first MOVED (a cluster, e.g. ElastiCache
Serverless or a self-managed one, addressed through any of its nodes) loads the slot map with
CLUSTER SLOTS; later MOVED replies (a slot resharded, a replica promoted) reload it. ASK (a slot
half-way through migration) sends the call to the importing node; TRYAGAIN (the group's keys
split between the two nodes for the moment) waits, up to the call timeout, for the move to end.
All keys of one model group share a hash tag, so every script touches exactly one slot.
Wake-ups need no routing: a PUBLISH on any node reaches subscribers on every node.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from router.state.resp import MessageCallback, RedisUnavailable, RespClient, ScriptError
from router.state.scripts import Script

__all__ = ["ClusterAwareClient", "key_slot"]

log = logging.getLogger("laneway.state")

SLOTS = 16384
_MOVED_LIMIT = 5  # more than a resharding ever needs; a loop of them is a broken cluster
_TRYAGAIN_PAUSE = 0.02
# Errors of a store between states (a primary lost, its replica not promoted yet; a node still
# loading its data, or out of memory under `noeviction`; an old primary turned replica; another
# client's script running too long): an outage to retry later, not a script bug. Each is
# answered before a script runs, or at its first write.
_PASSING_OUTAGES = ("CLUSTERDOWN", "MASTERDOWN", "LOADING", "OOM ", "READONLY ", "BUSY ")
_NOT_RUN = ("MOVED ", "ASK ", "TRYAGAIN", *_PASSING_OUTAGES)
"""Errors after which a node has not run the script it was sent."""


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


@functools.lru_cache(maxsize=4096)  # a process sees few distinct group keys, very often
def key_slot(key: str | bytes) -> int:
    """The cluster slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key when it
    has no non-empty `{...}` section."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc % SLOTS


def _target(error: str) -> tuple[str, int]:
    """The node a MOVED or ASK error points to: `MOVED <slot> <host>:<port>`."""
    host, _, port = error.split()[2].rpartition(":")
    return host, int(port)


class ClusterAwareClient:
    """The state backend's Redis client: `RespClient`'s calls, routed by slot once the server
    turns out to be a cluster. Belongs to one event loop, like the clients it holds."""

    def __init__(self, url: str, *, connect_timeout: float, op_timeout: float) -> None:
        self._seed = RespClient(url, connect_timeout=connect_timeout, op_timeout=op_timeout)
        self._op_timeout = op_timeout
        self._nodes: dict[tuple[str, int], RespClient] = {self._seed.node: self._seed}
        # (first slot, last slot, owner), sorted; empty while the server is not a cluster.
        self._ranges: list[tuple[int, int, tuple[str, int]]] = []
        self._refreshing: asyncio.Lock | None = None
        self._subscribe_turn = 0

    @property
    def is_cluster(self) -> bool:
        """True once the server has shown it is a Redis Cluster (it answered MOVED)."""
        return bool(self._ranges)

    async def execute(self, *args: Any) -> Any:
        """A keyless command (PING): any node answers for the whole store."""
        return await self._seed.execute(*args)

    async def run_script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        return await self._routed(
            key_slot(keys[0]) if keys else 0,
            lambda client, asking: client.run_script(script, keys, args, asking=asking))

    def script_now(self, script: Script, keys: list[str], args: list[Any]
                   ) -> Awaitable[Any] | None:
        """The script written at once to the node that owns its keys (see
        `RespClient.script_now`); None when that node has no open connection yet."""
        slot = key_slot(keys[0]) if keys else 0
        sent = self._owner(slot).script_now(script, keys, args)
        return None if sent is None else self._rerouted(sent, script, keys, args)

    async def _rerouted(self, sent: Awaitable[Any], script: Script, keys: list[str],
                        args: list[Any]) -> Any:
        try:
            return await sent
        except ScriptError as exc:
            if not str(exc).startswith(_NOT_RUN):
                raise
        # The node did not run it (the slot moved, or the cluster is failing over): the
        # routed way follows redirections and waits out a move.
        return await self.run_script(script, keys, args)

    async def command(self, key: str, *args: Any) -> Any:
        """One command on one key (`command(k, "ZADD", k, 1, "m")`), sent to the node owning
        the key's slot like a script."""
        return await self._routed(
            key_slot(key), lambda client, asking: client.execute(*args, asking=asking))

    async def _routed(self, slot: int,
                      send: Callable[[RespClient, bool], Awaitable[Any]]) -> Any:
        client, asking = self._owner(slot), False
        moved, pause, waited_until, rerouted = 0, _TRYAGAIN_PAUSE, 0.0, False
        while True:
            try:
                return await send(client, asking)
            except ScriptError as exc:
                error = str(exc)
                if error.startswith(_PASSING_OUTAGES):
                    raise RedisUnavailable(f"Redis cannot serve this now: {error}") from None
                if error.startswith("ASK "):  # this one call goes to the node the slot moves to
                    client, asking = self._client(*_target(error)), True
                elif error.startswith("MOVED "):
                    moved += 1
                    if moved > _MOVED_LIMIT:
                        raise RedisUnavailable("Redis Cluster kept redirecting (MOVED)") from None
                    await self._refresh(client)
                    client, asking = self._owner(slot, fallback=_target(error)), False
                elif error.startswith("TRYAGAIN"):
                    # The slot is moving and this group's keys are split between the two nodes
                    # (or not made yet): a script needs all of them, so wait for the move.
                    now = asyncio.get_running_loop().time()
                    waited_until = waited_until or now + self._op_timeout
                    if now >= waited_until:
                        raise RedisUnavailable("a Redis Cluster slot stayed half-moved") from None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.2)
                    client, asking = self._owner(slot), False
                else:
                    raise
            except RedisUnavailable:
                if not self._ranges or rerouted:
                    raise
                # The owner may have failed over to a replica: ask the others who owns it now.
                rerouted = True
                await self._refresh(client, exclude=client.node)
                retry = self._owner(slot)
                if retry is client:
                    raise
                client, asking = retry, False

    async def subscribe(self, channel: str, on_message: MessageCallback) -> None:
        """Listen on one node (messages published on any node reach all of them); each call
        after a lost connection tries the next known node, so one node's outage does not stop
        the wake-ups."""
        nodes = list(self._nodes.values())
        client = nodes[self._subscribe_turn % len(nodes)]
        self._subscribe_turn += 1
        await client.subscribe(channel, on_message)

    def close(self) -> None:
        for client in self._nodes.values():
            client.close()

    # -- slot map --------------------------------------------------------------------------
    def _client(self, host: str, port: int) -> RespClient:
        client = self._nodes.get((host, port))
        if client is None:
            client = self._nodes[(host, port)] = self._seed.sibling(host, port)
        return client

    def _owner(self, slot: int, fallback: tuple[str, int] | None = None) -> RespClient:
        index = bisect.bisect_right(self._ranges, slot, key=lambda r: r[0]) - 1
        if index >= 0:
            _, end, node = self._ranges[index]
            if slot <= end:
                return self._client(*node)
        return self._client(*fallback) if fallback else self._seed

    async def _refresh(self, asked: RespClient, exclude: tuple[str, int] | None = None) -> None:
        """Reload the slot map from the first node that answers CLUSTER SLOTS."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        if self._refreshing.locked():  # another call is reloading it: use its result
            async with self._refreshing:
                return
        async with self._refreshing:
            candidates = [asked, *(c for c in self._nodes.values() if c is not asked)]
            for client in candidates:
                if client.node == exclude:
                    continue
                try:
                    reply = await client.execute("CLUSTER", "SLOTS")
                except (RedisUnavailable, ScriptError) as exc:
                    log.debug("CLUSTER SLOTS from %s:%s failed: %s", *client.node, exc)
                    continue
                self._load(reply, client.node)
                return

    def _load(self, reply: list[Any], answered_by: tuple[str, int]) -> None:
        ranges = []
        for entry in reply:
            start, end, primary = int(entry[0]), int(entry[1]), entry[2]
            host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
            if host in ("", "?"):  # the node does not know its own address: the one we asked
                host = answered_by[0]
            ranges.append((start, end, (host, int(primary[1]))))
        self._ranges = sorted(ranges)
        log.debug("redis cluster slot map: %d ranges on %d nodes", len(ranges),
                  len({node for _, _, node in ranges}))
