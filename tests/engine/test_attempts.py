"""Every way an admitted attempt can end gives its slot, its token reservation and its place in
line back — on the in-process backend and on a real Redis, through real HTTP to an upstream
that answers exactly what each test scripts.

The invariant checked after each scenario is what another request would feel: the deployment
(one parallel slot, a tpm limit) holds nothing, its line is empty, and the next request is
served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from router import Router
from router.errors import RequestError
from tests.support.redis_server import RedisServer
from tests.support.scripted_upstream import (
    Script,
    chunk,
    completion,
    drop,
    hang,
    raw,
    scripted_upstream,
    sse,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")

TPM = 10_000
MAX_COOLDOWN = 30

SCRIPTS: dict[str, Script] = {
    "good": raw(200, completion()),
    "invalid-json": raw(200, b"{not json"),
    "json-array": raw(200, b"[1, 2, 3]"),
    "json-number": raw(200, b"42"),
    "usage-string": raw(200, completion(usage={"prompt_tokens": "twelve", "completion_tokens": 1})),
    "usage-list": raw(200, completion(usage=[1, 2])),
    "usage-negative": raw(200, completion(usage={"prompt_tokens": -5, "total_tokens": -5})),
    "usage-huge": raw(200, completion(usage={"total_tokens": 1e300})),
    "status-500": raw(500, b'{"error": {"message": "boom"}}'),
    "status-400": raw(400, b'{"error": {"message": "bad"}}'),
    "status-401": raw(401, b'{"error": {"message": "no key"}}'),
    "status-429-inf": raw(429, b'{"error": {"message": "slow down"}}',
                          headers=[("retry-after", "1e309")]),
    "status-429-day": raw(429, b'{"error": {"message": "slow down"}}',
                          headers=[("retry-after", "86400")]),
    "drop": drop(),
    "hang": hang(),
    "stream-cut": sse([chunk("a"), chunk("b")], then_drop=True),
    "stream-garbage": sse([chunk("a"), b"data: {not json\n\n"]),
    "stream-bad-usage": sse([chunk("a"), b'data: {"choices": [], "usage": {"total_tokens":'
                             b' "many"}}\n\n', b"data: [DONE]\n\n"]),
    "stream-hang": sse([chunk("a")], gap=3600),
    "stream-keepalive": sse([chunk("a"), *[b": keep-alive\n\n"] * 1000], gap=0.05),
}

NON_STREAM_FAILURES = ["invalid-json", "json-array", "json-number", "usage-string", "usage-list",
                       "usage-negative", "usage-huge", "status-500", "status-400", "status-401",
                       "status-429-inf", "status-429-day", "drop", "hang"]
STREAM_FAILURES = ["stream-cut", "stream-garbage", "stream-bad-usage", "stream-hang",
                   "stream-keepalive",
                   "invalid-json", "status-500", "drop", "hang"]


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Router, Any]]:
    settings: dict[str, Any] = {}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        settings["redis_url"] = server.url
    async with scripted_upstream(SCRIPTS) as up:
        model_list = [{"model_name": name, "litellm_params": {
            "model": f"openai/{name}", "api_base": up.url, "api_key": "sk-test-0123456789",
            "max_parallel_requests": 1, "tpm": TPM}} for name in SCRIPTS]
        router = Router(model_list=model_list, timeout=1.5, num_retries=0,
                        max_cooldown_seconds=MAX_COOLDOWN, allowed_fails=100, **settings)
        await router.warm()
        yield router, up
        await router.aclose()


async def held(router: Router, group: str) -> tuple[int, int, int, float]:
    """(in flight, tokens in the window, waiting, cooldown left) of a one-deployment group."""
    d = router.groups.resolve(group).deployments[0]
    (use,) = await router.state.usage(group, [d.id])
    waiting = sum(x.count for x in await router.lanes.depth(group))
    return use.in_flight, use.tokens, waiting, use.cooldown


def ask(model: str, **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
            **kw}


async def drain(chunks: AsyncIterator[Any]) -> None:
    async for _ in chunks:
        pass


@pytest.mark.parametrize("script", NON_STREAM_FAILURES)
async def test_failed_call_releases_and_refunds(engine: tuple[Router, Any], script: str) -> None:
    router, _ = engine
    with pytest.raises(RequestError) as info:
        await router.serve("chat", ask(script))
    assert 400 <= info.value.status <= 599
    if script not in ("status-400", "status-401", "hang"):
        assert info.value.status >= 500 or info.value.status == 429
    in_flight, tokens, waiting, cooldown = await held(router, script)
    assert (in_flight, tokens, waiting) == (0, 0, 0)
    assert math.isfinite(cooldown) and cooldown <= MAX_COOLDOWN


@pytest.mark.parametrize("script", STREAM_FAILURES)
async def test_failed_stream_releases_and_refunds(engine: tuple[Router, Any], script: str
                                                  ) -> None:
    router, _ = engine
    with pytest.raises(RequestError):
        served, _ = await router.serve("chat", ask(script, stream=True))
        await drain(served.response)  # type: ignore[arg-type]
    assert await held(router, script) == (0, 0, 0, 0.0)


async def test_reply_that_cannot_be_used_is_a_502_and_the_next_call_is_served(
        engine: tuple[Router, Any]) -> None:
    router, _ = engine
    # One slot: were the first attempt's slot left behind, the second would wait and time out.
    for _ in range(2):
        with pytest.raises(RequestError) as info:
            await router.serve("chat", ask("usage-string"))
        assert info.value.status == 502


async def test_upstream_retry_after_is_capped(engine: tuple[Router, Any]) -> None:
    router, _ = engine
    for script in ("status-429-inf", "status-429-day"):
        with pytest.raises(RequestError):
            await router.serve("chat", ask(script))
        *_, cooldown = await held(router, script)
        assert 0 < cooldown <= MAX_COOLDOWN


async def test_client_leaving_mid_call_frees_the_slot_when_the_upstream_answers(
        engine: tuple[Router, Any]) -> None:
    router, up = engine
    task = asyncio.ensure_future(router.serve("chat", ask("hang")))
    while not up.arrivals.get("hang"):
        await asyncio.sleep(0.01)
    task.cancel()  # the client went away; the upstream call runs on to its timeout
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await held(router, "hang"))[0] == 1  # still working upstream, within the limit
    for _ in range(300):
        if (await held(router, "hang"))[0] == 0:
            break
        await asyncio.sleep(0.01)
    in_flight, tokens, waiting, _ = await held(router, "hang")
    assert (in_flight, tokens, waiting) == (0, 0, 0)


async def test_client_leaving_mid_stream_frees_the_slot(engine: tuple[Router, Any]) -> None:
    router, _ = engine
    served, _ = await router.serve("chat", ask("stream-hang", stream=True))
    stream = served.response
    assert (await anext(stream))["choices"][0]["delta"]["content"] == "a"  # type: ignore[arg-type]
    assert (await held(router, "stream-hang"))[0] == 1
    await stream.aclose()  # type: ignore[union-attr]
    in_flight, _, waiting, cooldown = await held(router, "stream-hang")
    # Not the deployment's fault; its reservation stays (the upstream did work on it).
    assert (in_flight, waiting, cooldown) == (0, 0, 0.0)


async def test_waiter_that_leaves_line_leaves_nothing(engine: tuple[Router, Any]) -> None:
    router, up = engine
    first = asyncio.ensure_future(router.serve("chat", ask("hang")))
    while not up.arrivals.get("hang"):
        await asyncio.sleep(0.01)
    second = asyncio.ensure_future(router.serve("chat", ask("hang")))
    while (await held(router, "hang"))[2] == 0:
        await asyncio.sleep(0.01)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    for _ in range(200):  # leaving is sent at once; its answer may take a moment under load
        if (await held(router, "hang"))[2] == 0:
            break
        await asyncio.sleep(0.01)
    assert (await held(router, "hang"))[2] == 0
    with pytest.raises(RequestError):
        await first


async def test_successful_calls_reconcile_to_real_usage(engine: tuple[Router, Any]) -> None:
    router, _ = engine
    for _ in range(3):
        served, _ = await router.serve("chat", ask("good"))
        assert served.response["usage"]["total_tokens"] == 4  # type: ignore[index]
    assert await held(router, "good") == (0, 12, 0, 0.0)


async def test_same_client_request_id_gets_two_places_in_line(
        engine: tuple[Router, Any]) -> None:
    router, up = engine
    # Both requests claim one x-request-id; each must keep its own place and its own answer.
    blocker = asyncio.ensure_future(router.serve("chat", ask("hang"), request_id="same"))
    while not up.arrivals.get("hang"):
        await asyncio.sleep(0.01)
    waits = [asyncio.ensure_future(router.serve("chat", ask("hang"), request_id="same"))
             for _ in range(2)]
    while (await held(router, "hang"))[2] < 2:
        await asyncio.sleep(0.01)
    assert (await held(router, "hang"))[2] == 2
    for task in (blocker, *waits):
        task.cancel()
    await asyncio.gather(blocker, *waits, return_exceptions=True)


async def test_request_mock_never_touches_the_deployment(engine: tuple[Router, Any]) -> None:
    router, up = engine
    error = {"error": {"status": 429, "message": "mocked", "retry_after": 86400}}
    for mock in (error, "litellm.RateLimitError", "litellm.AuthenticationError", "fine"):
        with contextlib.suppress(RequestError):
            await router.serve("chat", ask("good", mock_response=mock))
    assert await held(router, "good") == (0, 0, 0, 0.0)
    assert not up.arrivals.get("good")
    served, _ = await router.serve("chat", ask("good"))
    assert orjson.loads(orjson.dumps(served.response))["choices"][0]["message"]["content"] == "ok"


async def test_stream_kept_alive_by_comments_ends_with_its_timeout(
        engine: tuple[Router, Any]) -> None:
    router, _ = engine
    started = time.monotonic()
    served, _ = await router.serve("chat", ask("stream-keepalive", stream=True))
    with pytest.raises(RequestError) as info:
        await drain(served.response)  # type: ignore[arg-type]
    assert info.value.status == 408
    assert 1.4 < time.monotonic() - started < 2.5  # the request's timeout is 1.5 s
