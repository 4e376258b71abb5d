"""The engine used as a library, as the request-prioritization page shows it."""

from __future__ import annotations

import asyncio
import time

import pytest

from router import Router
from router.errors import NotFound, RequestTimeout

pytestmark = pytest.mark.asyncio(loop_scope="function")

SEED = [{"model_name": "gpt-3.5-turbo", "litellm_params": {
    "model": "gpt-3.5-turbo", "mock_response": "Hello world this is Macintosh!", "rpm": 1}}]


async def test_seed_quickstart_queues_and_times_out() -> None:
    router = Router(model_list=SEED, timeout=2, routing_strategy="usage-based-routing-v2",
                    polling_interval=0.03)
    reply = await router.acompletion(model="gpt-3.5-turbo",
                                     messages=[{"role": "user", "content": "Hey!"}], priority=0)
    assert reply.choices[0].message.content == "Hello world this is Macintosh!"
    assert reply["usage"]["total_tokens"] > 0
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as info:  # rpm 1: the second request waits, then 408
        await router.acompletion(model="gpt-3.5-turbo",
                                 messages=[{"role": "user", "content": "Hey!"}], priority=0)
    assert 1.9 < time.monotonic() - started < 2.5
    assert info.value.status == 408
    assert await router.queue_status() == {}  # nothing left behind
    await router.aclose()


async def test_priority_orders_waiters_in_process() -> None:
    router = Router(model_list=[{"model_name": "m", "litellm_params": {
        "model": "gpt-4o", "mock_response": "ok", "max_parallel_requests": 1,
        "mock_delay": 0.05}}], timeout=10)
    served: list[str] = []

    async def ask(tag: str, priority: int | None) -> None:
        await router.acompletion(model="m", messages=[{"role": "user", "content": tag}],
                                 priority=priority)
        served.append(tag)

    tasks = [asyncio.create_task(ask("first", None))]
    await asyncio.sleep(0.01)
    for i in range(3):
        tasks.append(asyncio.create_task(ask(f"batch-{i}", 2000)))
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(ask("urgent", 0)))
    await asyncio.gather(*tasks)
    assert served == ["first", "urgent", "batch-0", "batch-1", "batch-2"]
    await router.aclose()


async def test_text_completion_embedding_and_stream() -> None:
    router = Router(model_list=[{"model_name": "m", "litellm_params": {
        "model": "gpt-4o", "mock_response": "one two"}}])
    text = await router.atext_completion(model="m", prompt="hi")
    assert text.choices[0].text == "one two"
    emb = await router.aembedding(model="m", input=["a", "b"])
    assert len(emb.data) == 2
    stream = await router.acompletion(model="m", messages=[{"role": "user", "content": "x"}],
                                      stream=True)
    parts = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p for p in parts if p) == "one two"
    with pytest.raises(NotFound):
        await router.acompletion(model="nope", messages=[{"role": "user", "content": "x"}])
    await router.aclose()


async def test_router_with_redis_keywords(redis_server) -> None:
    router = Router(model_list=SEED, redis_host="127.0.0.1", redis_port=redis_server.port,
                    timeout=1)
    assert router.state.name == "redis"
    reply = await router.acompletion(model="gpt-3.5-turbo",
                                     messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content
    await router.aclose()
