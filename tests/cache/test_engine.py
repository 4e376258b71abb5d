"""The response cache in process: the local store on the in-process default, the Redis store's
lease (a crashed leader strands nobody), what is never cached, and the startup warning."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest

from router import Router
from router.cache.store import RedisCacheStore
from router.config import parse_config
from router.errors import RequestTimeout, UpstreamError
from router.state.redis_store import RedisState
from tests.support.fake_openai import FakeUpstream
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="function")


def router_for(fake: FakeUpstream, model: str, *, cache_params: dict[str, Any] | None = None,
               redis: RedisServer | None = None, timeout: float = 10) -> Router:
    router_settings: dict[str, Any] = {"num_retries": 0, "timeout": timeout}
    if redis is not None:
        router_settings["redis_url"] = redis.url
    return Router.from_config(parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": f"openai/{model}", "api_base": fake.url, "api_key": "sk-fake"}}],
        "router_settings": router_settings,
        "litellm_settings": {"cache": True, "cache_params": cache_params or {}},
    }, environ={}))


def unique(knobs: str = "") -> str:
    return f"gpt-4o+t={uuid.uuid4().hex[:8]}{knobs}"


async def chat(router: Router, text: str = "hi", **kw: Any) -> Any:
    return await router.acompletion(model="m", messages=[{"role": "user", "content": text}],
                                     **kw)


async def test_the_local_cache_serves_the_in_process_default(fake_openai) -> None:
    model = unique("+delay=0.2")
    router = router_for(fake_openai, model)
    assert router.cache is not None and router.cache.store.name == "local"
    answers = await asyncio.gather(*(chat(router) for _ in range(10)))
    assert len({a.choices[0].message.content for a in answers}) == 1
    started = time.monotonic()
    again = await chat(router)
    assert time.monotonic() - started < 0.15  # not the upstream's 0.2 s
    assert again.choices[0].message.content == answers[0].choices[0].message.content
    assert fake_openai.counts()[model] == 1
    await router.aclose()


async def test_errors_and_oversized_answers_are_never_cached(fake_openai) -> None:
    failing = unique("+status=500")
    router = router_for(fake_openai, failing)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await chat(router)
    assert fake_openai.counts()[failing] == 2
    await router.aclose()
    big = unique()
    router = router_for(fake_openai, big, cache_params={"max_entry_bytes": 50})
    await chat(router)
    await chat(router)
    assert fake_openai.counts()[big] == 2
    await router.aclose()


async def test_a_crashed_leader_strands_nobody(fake_openai, redis_server) -> None:
    model = unique()
    router = router_for(fake_openai, model, redis=redis_server,
                        cache_params={"lock_lease_seconds": 0.3})
    _, record = await router.serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": "crash"}],
        "cache": {"no-store": True}})
    digest = record.cache_key
    assert digest is not None
    # A leader that took the lock and died: nobody finishes or renews it.
    store = RedisCacheStore(RedisState(redis_server.url))
    assert (await store.begin(digest, "dead-leader", 0.3)).lead
    started = time.monotonic()
    _, record = await router.serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": "crash"}]})
    assert 0.2 < time.monotonic() - started < 2.0
    assert record.cache_joined and not record.cache_hit and record.cache_stored
    await store.redis.close()
    await router.aclose()


async def test_a_followers_wait_ends_at_its_own_timeout(fake_openai, redis_server) -> None:
    model = unique()
    router = router_for(fake_openai, model, redis=redis_server, timeout=0.3,
                        cache_params={"lock_lease_seconds": 30})
    _, record = await router.serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": "held"}],
        "cache": {"no-store": True}})
    store = RedisCacheStore(RedisState(redis_server.url))
    assert record.cache_key is not None
    assert (await store.begin(record.cache_key, "slow-leader", 30)).lead
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        await chat(router, "held")
    assert time.monotonic() - started < 1.5
    await store.finish(record.cache_key, "slow-leader", None, 1)
    await store.redis.close()
    await router.aclose()


async def test_unsupported_cache_types_are_named_at_startup(fake_openai, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="laneway.cache"):
        router = router_for(fake_openai, unique(), cache_params={"type": "redis-semantic"})
    assert router.cache is None
    assert "'redis-semantic' is not supported" in caplog.text
    await router.aclose()


async def test_default_off_caches_only_requests_that_ask(fake_openai) -> None:
    model = unique()
    router = router_for(fake_openai, model, cache_params={"mode": "default_off"})
    await chat(router)
    await chat(router)
    await chat(router, cache={"use-cache": True})
    await chat(router, cache={"use-cache": True})
    assert fake_openai.counts()[model] == 3
    await router.aclose()


async def test_entries_spread_over_a_redis_cluster(fake_openai, redis_cluster) -> None:
    model = unique("+delay=0.1")
    router = Router.from_config(parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": f"openai/{model}", "api_base": fake_openai.url, "api_key": "sk-fake"}}],
        "router_settings": {"redis_url": redis_cluster.url, "num_retries": 0},
        "litellm_settings": {"cache": True},
    }, environ={}))
    assert router.cache is not None and router.cache.store.name == "redis"
    records = [rec for _, rec in await asyncio.gather(*(router.serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": f"q{i % 3}"}]})
        for i in range(9)))]
    assert len({r.cache_key for r in records}) == 3
    assert sum(r.cache_stored for r in records) == 3
    assert fake_openai.counts()[model] == 3
    await router.aclose()


async def test_a_cache_redis_of_its_own_is_shared_with_in_process_state(fake_openai,
                                                                        redis_server) -> None:
    model = unique()
    routers = [router_for(fake_openai, model, cache_params={"url": redis_server.url})
               for _ in range(2)]
    assert all(r.cache is not None and r.cache.store.name == "redis" for r in routers)
    _, first = await routers[0].serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": "own"}]})
    _, second = await routers[1].serve("chat", {
        "model": "m", "messages": [{"role": "user", "content": "own"}]})
    assert first.cache_stored and second.cache_hit
    assert fake_openai.counts()[model] == 1
    for r in routers:
        await r.aclose()


async def test_text_completions_and_embeddings_are_cached_too(fake_openai) -> None:
    model = unique()
    router = router_for(fake_openai, model)
    first = await router.atext_completion(model="m", prompt="say something")
    chunks = [c async for c in await router.atext_completion(
        model="m", prompt="say something", stream=True)]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == first.choices[0].text
    vectors = [await router.aembedding(model="m", input=["a", "b"]) for _ in range(2)]
    assert vectors[0]["data"] == vectors[1]["data"]
    assert fake_openai.counts()[model] == 2
    await router.aclose()


async def test_a_cut_stream_is_not_stored(fake_openai) -> None:
    model = unique("+cut_after=2")
    router = router_for(fake_openai, model)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            async for _chunk in await chat(router, "cut", stream=True):
                pass
    assert fake_openai.counts()[model] == 2
    await router.aclose()


async def test_a_wildcard_group_keeps_its_models_apart(fake_openai) -> None:
    router = Router.from_config(parse_config({
        "model_list": [{"model_name": "fake/*", "litellm_params": {
            "model": "openai/*", "api_base": fake_openai.url, "api_key": "sk-fake"}}],
        "litellm_settings": {"cache": True},
    }, environ={}))
    a, b = f"fake/{unique()}", f"fake/{unique()}"
    records = [(await router.serve("chat", {
        "model": name, "messages": [{"role": "user", "content": "same"}]}))[1]
        for name in (a, b, a)]
    assert [r.cache_hit for r in records] == [False, False, True]
    await router.aclose()


async def test_a_redis_outage_under_fail_open_bypasses_the_cache(fake_openai) -> None:
    from tests.support.redis_server import start_redis

    server = start_redis()
    model = unique()
    router = Router.from_config(parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": f"openai/{model}", "api_base": fake_openai.url, "api_key": "sk-fake"}}],
        "router_settings": {"redis_url": server.url, "redis_fail_open": True,
                            "num_retries": 0},
        "litellm_settings": {"cache": True},
    }, environ={}))
    try:
        _, first = await router.serve("chat", {
            "model": "m", "messages": [{"role": "user", "content": "outage"}]})
        assert first.cache_stored
        server.stop()
        served, again = await router.serve("chat", {
            "model": "m", "messages": [{"role": "user", "content": "outage"}]})
        assert isinstance(served.response, dict) and again.status == 200
        assert not again.cache_hit and fake_openai.counts()[model] == 2
    finally:
        await router.aclose()
        server.stop()
