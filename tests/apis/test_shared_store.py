"""Stored Responses conversations live in the shared state: a follow-up sent to another gateway
process continues the conversation, a stored response expires with its TTL, and one key never
sees another's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
import redis

from router.state.kv import MemoryKV, RedisKV, kv_for
from router.state.redis_store import RedisState
from router.tenants.records import ANONYMOUS, MASTER, KeyRecord, Principal
from router.translate.store import ResponseStore, owner_of
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, start_gateway
from tests.support.redis_server import RedisServer


def shared_config(upstream: FakeUpstream, router: dict[str, Any] | None = None,
                  general: dict[str, Any] | None = None) -> dict[str, Any]:
    """One model, `shared`, translated to chat on the fake upstream."""
    return {"model_list": [{"model_name": "shared", "litellm_params": {
        "model": "hosted_vllm/shared-fake", "api_base": upstream.url, "api_key": "x"}}],
        "router_settings": router or {}, "general_settings": general or {}}


@pytest.fixture(scope="module")
def pair(fake_openai: FakeUpstream, redis_server: RedisServer) -> Iterator[list[Gateway]]:
    config = shared_config(fake_openai, {"redis_url": redis_server.url},
                           {"response_store_ttl": 120})
    gateways = [start_gateway(config), start_gateway(config)]
    yield gateways
    for gateway in gateways:
        gateway.stop()


def test_a_follow_up_on_another_instance_continues(pair: list[Gateway],
                                                  fake_openai: FakeUpstream,
                                                  redis_server: RedisServer) -> None:
    a, b = (gw.openai() for gw in pair)
    first = a.responses.create(model="shared", input="Remember: the code word is heron.")
    second = b.responses.create(model="shared", input="What is the code word?",
                                previous_response_id=first.id)
    sent = [r for r in fake_openai.requests() if r["body"].get("model") == "shared-fake"][-1]
    contents = [m["content"] for m in sent["body"]["messages"]]
    assert contents[0] == "Remember: the code word is heron."
    assert contents[1] == first.output_text and contents[2] == "What is the code word?"
    assert a.responses.retrieve(second.id).output_text == second.output_text
    # Stored with the configured TTL, under the response's own hash tag.
    keys = [k for k in redis.Redis.from_url(redis_server.url).scan_iter(f"*{second.id}*")]
    assert len(keys) == 1 and b"{r:" in keys[0]
    ttl = redis.Redis.from_url(redis_server.url).pttl(keys[0])
    assert 100_000 < ttl <= 120_000
    b.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(second.id)


def _principal(key_hash: str) -> Principal:
    return Principal("key", key=KeyRecord(key_hash=key_hash, key_last4="abcd"))


@pytest.mark.parametrize("backend", ["redis", "memory"])
async def test_a_stored_response_belongs_to_its_key(backend: str, redis_server: RedisServer
                                                    ) -> None:
    state = RedisState(redis_server.url)
    kv = RedisKV(state) if backend == "redis" else MemoryKV()
    store = ResponseStore(kv, ttl=60)
    alice, bob = owner_of(_principal("a" * 64)), owner_of(_principal("b" * 64))
    response = {"id": f"resp_owner_{backend}", "object": "response", "output": []}
    await store.save(alice, response, [{"role": "user", "content": "hi"}])
    assert (await store.load(alice, response["id"])) is not None
    for other in (bob, owner_of(MASTER), owner_of(ANONYMOUS)):
        assert await store.load(other, response["id"]) is None
        assert not await store.delete(other, response["id"])
    assert await store.delete(alice, response["id"])
    assert await store.load(alice, response["id"]) is None
    await state.close()


async def test_memory_values_expire() -> None:
    kv = MemoryKV(limit=2)
    await kv.put("gone", b"1", ttl=0.0)
    assert await kv.get("gone") is None
    for name in ("a", "b", "c"):
        await kv.put(name, name.encode(), ttl=60)
    assert await kv.get("a") is None and await kv.get("c") == b"c"  # the oldest went first


def test_the_store_follows_the_state_backend(redis_server: RedisServer) -> None:
    from router.state.failover import FailOpenState
    from router.state.memory import MemoryState

    assert isinstance(kv_for(MemoryState()), MemoryKV)
    assert isinstance(kv_for(RedisState(redis_server.url)), RedisKV)
    assert isinstance(kv_for(FailOpenState(RedisState(redis_server.url))), RedisKV)

async def test_a_full_memory_store_drops_the_expired_before_the_live() -> None:
    kv = MemoryKV(limit=3)
    await kv.put("old", b"1", ttl=0.0)
    await kv.put("live", b"2", ttl=60)
    await kv.put("again", b"3", ttl=60)
    await kv.put("live", b"4", ttl=60)  # written again: now the newest
    await kv.put("new", b"5", ttl=60)
    assert [await kv.get(k) for k in ("old", "again", "live", "new")] == [None, b"3", b"4", b"5"]
    await kv.put("newer", b"6", ttl=60)  # full of live values: the oldest goes
    assert await kv.get("again") is None and await kv.get("live") == b"4"


def _commands(url: str) -> int:
    """The scripts Redis has run: every read or write of laneway's is one."""
    with redis.Redis.from_url(url) as r:
        stats = r.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0)
               for name in ("fcall", "fcall_ro", "evalsha", "eval"))


@pytest.mark.parametrize("stream", [False, True])
def test_a_stored_response_costs_the_two_round_trips_of_any_request(
        pair: list[Gateway], redis_server: RedisServer, stream: bool) -> None:
    client = pair[0].openai()
    client.responses.create(model="shared", input="warm up")  # scripts loaded, pool open
    before = _commands(redis_server.url)
    ids = []
    for _ in range(5):
        if stream:
            with client.responses.stream(model="shared", input="hello") as events:
                ids.append(events.get_final_response().id)
        else:
            ids.append(client.responses.create(model="shared", input="hello").id)
    # The admission and the release, which also writes the conversation: nothing else.
    assert _commands(redis_server.url) - before == 2 * 5
    assert all(client.responses.retrieve(i).id == i for i in ids)


async def test_a_memory_store_keeps_to_its_byte_budget() -> None:
    kv = MemoryKV(limit=100, max_bytes=10)
    await kv.put("a", b"12345", ttl=60)
    await kv.put("b", b"12345", ttl=60)
    await kv.put("c", b"123", ttl=60)  # 13 bytes would be over: the oldest goes
    assert [await kv.get(k) for k in "abc"] == [None, b"12345", b"123"]
    await kv.put("huge", b"x" * 11, ttl=60)  # could never fit: kept nowhere, nothing dropped
    assert await kv.get("huge") is None and await kv.get("b") == b"12345"
    assert await kv.delete("b")
    await kv.put("d", b"1234567", ttl=60)  # what the deleted value held is free again
    assert await kv.get("c") == b"123" and await kv.get("d") == b"1234567"


@pytest.mark.parametrize("state", ["redis", "memory"])
def test_a_conversation_over_the_size_limit_is_answered_but_not_stored(
        fake_openai: FakeUpstream, redis_server: RedisServer, state: str) -> None:
    gateway = start_gateway(shared_config(
        fake_openai, {"redis_url": redis_server.url} if state == "redis" else None,
        {"response_store_max_bytes": 4096}))
    try:
        client = gateway.openai()
        small = client.responses.create(model="shared", input="short")
        large = client.responses.create(model="shared", input="long " * 1000)
        assert large.output_text and large.store is False  # whole, and says it is not kept
        assert small.store is True
        assert client.responses.retrieve(small.id).id == small.id
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(large.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="shared", input="and?", previous_response_id=large.id)
        streamed = client.responses.create(model="shared", input="long " * 1000, stream=True)
        done = [e for e in streamed if e.type == "response.completed"]
        assert len(done) == 1 and done[0].response.store is False
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(done[0].response.id)
    finally:
        gateway.stop()


def test_failing_open_a_response_is_answered_though_it_cannot_be_stored(
        fake_openai: FakeUpstream) -> None:
    from tests.support.redis_server import start_redis

    own = start_redis()  # this test stops it
    gateway = start_gateway(shared_config(fake_openai,
                                          {"redis_url": own.url, "redis_fail_open": True}))
    try:
        client = gateway.openai()
        assert client.responses.create(model="shared", input="hi").store is True
        own.kill()
        answered = client.responses.create(model="shared", input="hi")
        assert answered.output_text and answered.store is False  # not a 503: not kept
        events = list(client.responses.create(model="shared", input="hi", stream=True))
        assert events[-1].type == "response.completed"
        assert events[-1].response.store is False  # type: ignore[union-attr]
    finally:
        gateway.stop()
        own.stop()
