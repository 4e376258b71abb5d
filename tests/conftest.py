from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_openai import FakeUpstream, start_fake_openai
from tests.support.redis_server import RedisCluster, RedisServer, start_redis, start_redis_cluster


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session; tests use their own key prefixes/db flush."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real three-primary Redis Cluster for the session, started only by tests that ask."""
    cluster = start_redis_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    """One loopback fake OpenAI server for the session (use distinct model names per test)."""
    with start_fake_openai() as upstream:
        yield upstream
