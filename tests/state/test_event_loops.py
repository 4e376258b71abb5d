"""Serverless runtimes may run each invocation on a new event loop: the pools follow."""

from __future__ import annotations

import asyncio

from router import Router


def test_router_survives_a_new_event_loop_per_invocation(redis_server) -> None:
    router = Router(model_list=[{"model_name": "m", "litellm_params": {
        "model": "gpt-4o", "mock_response": "hi", "rpm": 100}}], redis_url=redis_server.url)

    async def invoke() -> str:
        reply = await router.acompletion(model="m", messages=[{"role": "user", "content": "x"}])
        return str(reply.choices[0].message.content)

    # Each asyncio.run() is a fresh loop, as a new Lambda invocation loop would be; the Redis
    # pool and the HTTP pool of the old loop must not be reused.
    assert [asyncio.run(invoke()) for _ in range(3)] == ["hi", "hi", "hi"]
