"""The state backends every contract test runs on: in process, one Redis, a Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis

from router.state.keys import WAKE_CHANNEL
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
    else:
        # Groups land on all three primaries of the Cluster; the client is given the first
        # one only. Connections get time to open on a busy machine (production keeps 0.1 s).
        server: RedisServer | RedisCluster = request.getfixturevalue(
            "redis_server" if request.param == "redis" else "redis_cluster")
        url = server.url
        state = RedisState(url, connect_timeout=2.0)
    wakes = Wakes()
    await state.start(wakes)
    if isinstance(state, RedisState):
        await _subscribed(url, wakes)
    yield state, wakes
    await state.close()


async def _subscribed(url: str, wakes: Wakes) -> None:
    """Until a wake-up sent now reaches the state: its subscription is in place (which may take a
    while on a busy machine), so the tests' own wake-ups cannot be missed."""
    probe = "probe-" + uuid.uuid4().hex
    with redis.Redis.from_url(url) as r:
        for _ in range(100):
            r.publish(WAKE_CHANNEL, probe)
            with contextlib.suppress(TimeoutError):
                await wakes.wait_for(probe, timeout=0.05)
                break
        else:
            raise AssertionError("the wake-up subscription never came up")
    wakes.seen.clear()
