"""The state backends every contract test runs on: in process, one Redis, a Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from router.state.memory import MemoryState
from router.state.redis_store import RedisState
from tests.support.redis_server import RedisCluster, RedisServer


class Wakes:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.event = asyncio.Event()

    def __call__(self, rid: str) -> None:
        self.seen.append(rid)
        self.event.set()

    async def wait_for(self, rid: str, timeout: float = 2.0) -> None:
        async def until() -> None:
            while rid not in self.seen:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(until(), timeout)


@pytest_asyncio.fixture(params=["memory", "redis", "redis-cluster"], loop_scope="function")
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[tuple[object, Wakes]]:
    if request.param == "memory":
        state: MemoryState | RedisState = MemoryState()
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        state = RedisState(server.url)
    else:  # groups land on all three primaries; the client is given the first one only
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        state = RedisState(cluster.url)
    wakes = Wakes()
    await state.start(wakes)
    await asyncio.sleep(0 if request.param == "memory" else 0.05)  # subscription in place
    yield state, wakes
    await state.close()
