from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_openai import FakeUpstream, start_fake_openai
from tests.support.redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session; tests use their own key prefixes/db flush."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    """One loopback fake OpenAI server for the session (use distinct model names per test)."""
    with start_fake_openai() as upstream:
        yield upstream
