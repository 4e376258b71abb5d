"""Found by the soak: a minute after a deployment's busy moment, its token window drops the
entries that fell out of it. When those were all refunded (failed or cancelled calls: zero
tokens), the script subtracted "-0", which Redis refuses as an integer, and every admission
that pruned them answered 500 until the window moved on."""

from __future__ import annotations

import pytest
import redis

from router.state.base import AdmitRequest, Admitted, Candidate, Release
from router.state.keys import GroupKeys
from router.state.redis_store import RedisState
from tests.support.cluster import unique


@pytest.mark.asyncio
async def test_a_window_of_refunded_calls_rolls_over_cleanly(redis_server) -> None:
    group = unique("window")
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)

    def ask(n: int) -> AdmitRequest:
        return AdmitRequest(group=group, request_id=f"r{n}", slot_id=f"r{n}.1", priority=0,
                            tokens=0, candidates=[Candidate("d")], lease=1.2)

    try:
        assert isinstance(await state.admit(ask(1)), Admitted)
        await state.release(Release(group, "d", "r1.1", tokens_used=0, outcome="fail"))
        # A minute goes by: the refunded call's window entry is older than the window.
        keys = GroupKeys.of(group).deployment("d")
        r = redis.Redis.from_url(redis_server.url)
        try:
            seconds, _ = r.time()
            r.zadd(keys.tpm, {"r1.1": (seconds - 61) * 1000})
            assert isinstance(await state.admit(ask(2)), Admitted)
            assert r.zscore(keys.tpm, "r1.1") is None  # it left the window
        finally:
            r.close()
    finally:
        await state.close()
