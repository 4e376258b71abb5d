from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from tests.support.fake_openai import FakeUpstream, start_fake_openai, start_server


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    server = start_fake_openai()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="function")  # the tests' own loop, not the session's
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _session_server(module: str, suffix: str = "",
                    env: dict[str, str] | None = None) -> Iterator[FakeUpstream]:
    server = start_server(module, suffix, env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_anthropic")


@pytest.fixture(scope="session")
def fake_azure() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_azure")


@pytest.fixture(scope="session")
def fake_ollama() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_ollama")


@pytest.fixture(scope="session")
def fake_tgi() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_tgi")


BEDROCK_SECRET = "test-secret-key-0123456789"
BEDROCK_API_KEY = "bedrock-api-key-0123456789"


@pytest.fixture(scope="session")
def fake_bedrock() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_bedrock", env={
        "FAKE_AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET, "FAKE_BEDROCK_API_KEY": BEDROCK_API_KEY})
