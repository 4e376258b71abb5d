from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_openai import FakeUpstream, start_fake_openai


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    with start_fake_openai() as upstream:
        yield upstream
