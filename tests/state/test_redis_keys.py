"""What the Redis backend leaves in Redis: one slot per group, a TTL on every key."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.cluster import key_slot

from router.state.base import AdmitRequest, Candidate, Release
from router.state.keys import GroupKeys
from router.state.redis_store import RedisState


@pytest.mark.asyncio(loop_scope="function")
async def test_every_key_has_a_ttl_and_one_slot_per_group(redis_server) -> None:
    state = RedisState(redis_server.url)
    await state.start(lambda rid: None)
    group = f"keys-{uuid.uuid4().hex[:6]}"
    c = Candidate("d", rpm=1, tpm=1000, max_parallel=1)

    def req(rid: str) -> AdmitRequest:
        return AdmitRequest(group=group, request_id=rid, slot_id=rid + ".1", priority=0,
                            tokens=10, candidates=[c], lease=5)

    await state.admit(req("a"))
    await state.admit(req("b"))  # waits
    await state.release(Release(group, "d", "a.1", tokens_used=5, outcome="fail",
                                allowed_fails=1, cooldown=5))
    await state.renew(group, ["b"], [], 5)
    await state.close()

    r = redis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in r.scan_iter(match=f"{GroupKeys.of(group).base}*")]
    assert len(keys) >= 6
    assert {key_slot(k.encode()) for k in keys} == {key_slot(keys[0].encode())}
    assert all(r.pttl(k) > 0 for k in keys), {k: r.pttl(k) for k in keys}
    r.close()


def test_group_names_with_braces_keep_a_valid_hash_tag() -> None:
    odd = GroupKeys.of("we{ird}")
    assert odd.line.count("{") == 1 and odd.line.count("}") == 1
    assert key_slot(odd.line.encode()) == key_slot(odd.deployment("x").rpm.encode())
