"""Property-based: hostile upstream replies against the engine, on both state backends.

Hypothesis draws what each upstream deployment answers — any status (1xx to 999), hostile
Retry-After and rate-limit headers, content-type and content-length lies, completions, JSON of
the wrong shape, non-JSON, SSE streams with broken framing, error events, keep-alives, stalls
shorter and longer than the timeout, dropped connections — and which request meets it (chat or
text, streamed or not, read to the end or abandoned, alone or with a second request in line).
The scripted upstream serves those answers byte for byte on the test's own event loop.

Whatever was drawn, a user sees one of two things: an OpenAI success, or a `RequestError`
with a 4xx/5xx status (never a 500) and an OpenAI error body. No request outlives its timeout.
Afterwards every deployment touched holds no slot, its line is empty, and a request that
failed left no tokens reserved.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handler.streaming import json_bytes
from router import Router
from router.errors import InternalError, RequestError, RequestTimeout
from tests.support.scripted_upstream import (
    Reply,
    Script,
    completion,
    drop,
    hang,
    reply,
    scripted_upstream,
    sequence,
)

TIMEOUT = 0.4
"""The request timeout: short, so that stalls longer than it cost little test time."""
MARGIN = 0.75
"""Slack for a shared 2-core machine; a request held past its timeout takes far longer (a
trickled body of six pieces, say, each within the read timeout)."""
TPM = 10_000
MAX_RESPONSE_BYTES = 16_384
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_names = itertools.count()


@pytest.fixture(scope="module", params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Router settings choosing the state backend (module scoped: hypothesis reruns the test
    body many times, and each example builds its own router and upstream)."""
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_server").url}
    return {}


# -- what an upstream may answer -------------------------------------------------------------

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
WAITS = st.one_of(
    st.sampled_from(["1e309", "nan", "inf", "-inf", "-5", "0", "0.001", "1", "3600",
                     "99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT",
                     "Thu, 01 Jan 1970 00:00:00 GMT", "garbage", "1e309ms", "6m0s", "1h30m",
                     "", "\t2"]),
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.text(PRINTABLE, max_size=20),
)
HEADERS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["retry-after", "Retry-After", "retry-after-ms",
                               "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
                               "x-ratelimit-remaining-requests"]), WAITS),
    st.tuples(st.just("content-encoding"), st.sampled_from(["gzip", "deflate", "br",
                                                            "identity", "gzip, gzip"])),
    st.tuples(st.just("transfer-encoding"), st.sampled_from(["chunked", "identity", "gzip"])),
    st.tuples(st.just("content-length"), st.sampled_from(["-1", "abc", "0",
                                                          "99999999999999999999"])),
    st.tuples(st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1,
                      max_size=8), st.text(PRINTABLE, max_size=30)),
), max_size=3).map(tuple)
STATUSES = st.one_of(
    st.just(200), st.just(200),
    st.sampled_from([0, 100, 101, 103, 199, 201, 204, 206, 299, 301, 302, 304, 400, 401, 403,
                     404, 408, 409, 413, 422, 429, 499, 500, 502, 503, 504, 529, 599, 600,
                     999]),
)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json", "text/event-stream",
                                 "text/plain", "text/html", "application/json; charset=utf-8",
                                 "application/x-ndjson", None])
DELAYS = st.sampled_from([0.0] * 8 + [0.02, TIMEOUT / 2, TIMEOUT * 2])
GAPS = st.sampled_from([0.0] * 8 + [0.01, TIMEOUT * 0.9, TIMEOUT * 2])
"""Between pieces: none, a little, just within the read timeout (a trickle), past it."""

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
COUNTS = st.one_of(st.integers(0, 500), st.integers(-(2**70), 2**70), st.floats(),
                   st.text("0123456789x", max_size=18), JSON_VALUES)
USAGE = st.one_of(
    st.none(),
    st.fixed_dictionaries({"prompt_tokens": st.integers(0, 50),
                           "completion_tokens": st.integers(0, 50)}),
    st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens"]),
                    COUNTS, max_size=3),
    JSON_VALUES,
)
CONTENT = st.one_of(st.text(max_size=30), st.none(), JSON_VALUES)
CHAT_CHOICE = st.fixed_dictionaries(
    {"index": st.just(0), "finish_reason": st.sampled_from(["stop", "length", None]),
     "message": st.fixed_dictionaries({"role": st.just("assistant"), "content": CONTENT},
                                      optional={"tool_calls": JSON_VALUES})})
TEXT_CHOICE = st.fixed_dictionaries(
    {"index": st.just(0), "finish_reason": st.sampled_from(["stop", None]), "text": CONTENT})


def _dumps(value: Any) -> bytes:
    """JSON as a careless upstream writes it: integers of any size, NaN and Infinity too."""
    return json.dumps(value).encode()


def _body_of(choice: st.SearchStrategy[Any], kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": st.just("cmpl-1"), "object": st.just(kind), "created": st.just(1),
         "model": st.just("m"), "choices": st.lists(choice, min_size=1, max_size=2)},
        optional={"usage": USAGE})


COMPLETIONS = st.one_of(_body_of(CHAT_CHOICE, "chat.completion"),
                        _body_of(TEXT_CHOICE, "text_completion"))
BODIES = st.one_of(
    COMPLETIONS.map(_dumps), COMPLETIONS.map(_dumps),
    JSON_VALUES.map(_dumps),
    st.dictionaries(st.sampled_from(["choices", "data", "usage", "object", "error"]),
                    JSON_VALUES, min_size=1).map(_dumps),
    st.fixed_dictionaries({"error": st.one_of(JSON_VALUES, st.fixed_dictionaries(
        {"message": JSON_VALUES, "code": JSON_VALUES, "type": JSON_VALUES}))}).map(_dumps),
    st.binary(max_size=64),
    st.sampled_from([b"", b"{", b"<html>bad gateway</html>", b"null", b"[]", b'"text"',
                     b"\xff\xfe\x00", b'{"choices": [], "usage": {"total_tokens": 1' + b"0" * 400
                     + b"}}", b'{"choices": [{"message": {"content": "x"}}], "usage": '
                     b'{"total_tokens": 1e400}}', b'{"choices": ' + b"[" * 300 + b"]" * 300
                     + b"}", b'{"choices": [{"text": "' + b"x" * 20_000 + b'"}]}']),
)


def _event(value: Any) -> bytes:
    return b"data: " + _dumps(value) + b"\n\n"


CHUNKS = st.one_of(
    st.builds(lambda text: {"id": "c", "object": "chat.completion.chunk", "created": 1,
                            "model": "m", "choices": [{"index": 0, "delta": {"content": text},
                                                       "finish_reason": None}]}, CONTENT),
    st.builds(lambda text: {"id": "c", "object": "text_completion", "created": 1,
                            "model": "m", "choices": [{"index": 0, "text": text,
                                                       "finish_reason": None}]}, CONTENT),
)
EVENTS = st.one_of(
    CHUNKS.map(_event), CHUNKS.map(_event), CHUNKS.map(_event),
    USAGE.map(lambda u: _event({"id": "c", "object": "chat.completion.chunk", "choices": [],
                                "usage": u})),
    st.just(b": keep-alive\n\n"),
    st.just(b"data: [DONE]\n\n"),
    JSON_VALUES.map(_event),
    st.fixed_dictionaries({"error": JSON_VALUES}).map(_event),
    st.fixed_dictionaries({"error": st.fixed_dictionaries(
        {"message": st.text(max_size=10), "code": st.sampled_from([429, "503", 500, None])})}
    ).map(lambda e: b"event: error\n" + _event(e)),
    st.binary(max_size=30),
    CHUNKS.map(_event).map(lambda e: e[:-2]),  # never terminated
    CHUNKS.map(_event).map(lambda e: e.replace(b"\n", b"\r")),
    st.sampled_from([b"data: {not json\n\n", b"retry: 100\n\n", b"id: 5\n\n", b"data:\n\n",
                     b"data: " + b"x" * 20_000 + b"\n\n", b"\n\n\n", b"data: 1e400\n\n"]),
)


@st.composite
def json_replies(draw: st.DrawFn) -> Reply:
    body = draw(BODIES)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    pieces = tuple(body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True))
    return Reply(status=draw(STATUSES), headers=draw(HEADERS), content_type=draw(CONTENT_TYPES),
                 pieces=pieces, framing=draw(st.sampled_from(["length", "length", "chunked",
                                                              "close"])),
                 length_lie=draw(st.sampled_from([0] * 12 + [-1, -5, 1, 100])),
                 delay=draw(DELAYS), gap=draw(GAPS),
                 ending=draw(st.sampled_from(["end"] * 6 + ["drop", "hang"])))


@st.composite
def sse_replies(draw: st.DrawFn) -> Reply:
    events = draw(st.lists(EVENTS, max_size=8))
    if draw(st.booleans()):
        events.append(b"data: [DONE]\n\n")
    return Reply(status=draw(st.one_of(st.just(200), st.just(200), STATUSES)),
                 headers=draw(HEADERS),
                 content_type=draw(st.one_of(st.just("text/event-stream"), CONTENT_TYPES)),
                 pieces=tuple(events),
                 framing=draw(st.sampled_from(["chunked", "chunked", "close", "length"])),
                 delay=draw(DELAYS), gap=draw(GAPS),
                 ending=draw(st.sampled_from(["end"] * 6 + ["drop", "hang"])))


ANSWERS: st.SearchStrategy[Reply | str] = st.one_of(
    json_replies(), sse_replies(), json_replies(), sse_replies(),
    st.sampled_from(["drop", "drop", "hang"]))


def _script(answer: Reply | str) -> Script:
    if answer == "drop":
        return drop()
    if answer == "hang":
        return hang()
    assert isinstance(answer, Reply)
    return reply(answer)


@dataclass(frozen=True)
class Scenario:
    endpoint: str
    stream: bool
    include_usage: bool
    read: int | None
    """Chunks to read before abandoning a stream; None reads it to the end."""
    concurrent: int
    num_retries: int
    answers: tuple[tuple[Reply | str, ...], ...]
    """Per deployment of the group, its answers to successive arrivals."""
    fallback: tuple[Reply | str, ...] | None
    """The answers of a fallback group's one deployment, when there is one."""


def scenarios(stream: bool) -> st.SearchStrategy[Scenario]:
    per_deployment = st.lists(ANSWERS, min_size=1, max_size=3).map(tuple)
    return st.builds(
        Scenario,
        endpoint=st.sampled_from(["chat", "text"]),
        stream=st.just(stream),
        include_usage=st.booleans(),
        read=st.one_of(st.none(), st.integers(0, 3)) if stream else st.none(),
        concurrent=st.sampled_from([1, 1, 1, 2]),
        num_retries=st.sampled_from([0, 1, 1, 2]),
        answers=st.lists(per_deployment, min_size=1, max_size=2).map(tuple),
        fallback=st.one_of(st.none(), st.none(), per_deployment),
    )


# -- the invariants --------------------------------------------------------------------------

def assert_error_body(exc: RequestError) -> None:
    assert 400 <= exc.status <= 599, repr(exc)
    assert not isinstance(exc, InternalError), repr(exc)
    # An upstream's server error is the client's 502 (or 503, 504): laneway's own 500 never.
    assert exc.status < 500 or exc.status in (502, 503, 504), repr(exc)
    body = orjson.loads(orjson.dumps(exc.body()))
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)


def assert_choices(obj: Any) -> None:
    """An OpenAI completion (or chunk): an object whose `choices` is a list of objects, which
    the gateway can serialise as it is."""
    assert isinstance(obj, dict), obj
    orjson.dumps(obj)
    choices = obj.get("choices")
    if choices is None:
        # KNOWN GAP: a reply or chunk without `choices` is passed on as a success, see
        # test_reply_without_choices_is_a_502 below; tighten this when that passes.
        return
    assert isinstance(choices, list), obj
    assert all(isinstance(c, dict) for c in choices), obj


async def one_call(router: Router, body: dict[str, Any], scenario: Scenario) -> bool:
    """Make one request as the scenario says; True when it failed."""
    started = time.monotonic()
    try:
        served, _ = await router.serve(scenario.endpoint, body)
        if isinstance(served.response, dict):
            assert not scenario.stream
            assert_choices(served.response)
        else:
            assert scenario.stream
            await read_stream(served.response, scenario.read)
        event("served")
        return False
    except RequestError as exc:
        assert_error_body(exc)
        event(f"failed with {exc.status}")
        return True
    finally:
        assert time.monotonic() - started <= TIMEOUT + MARGIN


async def read_stream(chunks: AsyncIterator[Any], read: int | None) -> None:
    try:
        n = 0
        while read is None or n < read:  # then the client leaves, mid-stream
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            assert_choices(chunk)
            n += 1
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def assert_released(router: Router, groups: list[str], refunded: bool) -> None:
    # An admission answered after its request gave up is given back when the answer arrives,
    # a moment after the request ended: let that land first (at most two seconds).
    for _ in range(200):
        uses = [u for name in groups for u in await router.state.usage(
            name, [d.id for d in router.groups.resolve(name).deployments])]
        lines = [sum(x.count for x in await router.state.line(name)) for name in groups]
        if all(u.in_flight == 0 for u in uses) and not any(lines):
            break
        await asyncio.sleep(0.01)
    for name in groups:
        group = router.groups.resolve(name)
        for use in await router.state.usage(name, [d.id for d in group.deployments]):
            assert use.in_flight == 0, (name, use)
            if refunded:
                assert use.tokens == 0, (name, use)
        assert sum(x.count for x in await router.state.line(name)) == 0, name


async def settled(router: Router, groups: list[str]) -> None:
    """Wait (at most a second) for slots to come back. A stream closed before its first read
    never started its wrapping generators, so their `finally` cannot end the relay: the relay
    (already started, holding the attempt) is closed by the event loop's async-generator
    finalizer a few loop turns later, not by `aclose()` itself."""
    for _ in range(100):
        uses = [u for name in groups for u in await router.state.usage(
            name, [d.id for d in router.groups.resolve(name).deployments])]
        if all(u.in_flight == 0 for u in uses):
            return
        await asyncio.sleep(0.01)


async def run(scenario: Scenario, backend: dict[str, Any]) -> None:
    n = next(_names)
    group, spare = f"hp{n}", f"hp{n}-fallback"
    scripts: dict[str, Script] = {}
    model_list = []
    for i, answers in enumerate(scenario.answers):
        scripts[f"{group}-{i}"] = sequence(*map(_script, answers))
    if scenario.fallback is not None:
        scripts[spare] = sequence(*map(_script, scenario.fallback))
    async with scripted_upstream(scripts) as up:
        for model in scripts:
            model_list.append({"model_name": spare if model == spare else group,
                               "litellm_params": {
                                   "model": f"openai/{model}", "api_base": up.url,
                                   "api_key": "sk-test-0123456789", "max_parallel_requests": 1,
                                   "tpm": TPM}})
        fallbacks = [{group: [spare]}] if scenario.fallback is not None else []
        router = Router(model_list=model_list, timeout=TIMEOUT, num_retries=scenario.num_retries,
                        fallbacks=fallbacks, max_cooldown_seconds=5, cooldown_time=1,
                        max_response_bytes=MAX_RESPONSE_BYTES, **backend)
        try:
            await router.warm()
            body: dict[str, Any] = {"model": group, "max_tokens": 20}
            if scenario.endpoint == "chat":
                body["messages"] = [{"role": "user", "content": "hi"}]
            else:
                body["prompt"] = "hi"
            if scenario.stream:
                body["stream"] = True
                if scenario.include_usage:
                    body["stream_options"] = {"include_usage": True}
            failed = await asyncio.gather(
                *(one_call(router, body, scenario) for _ in range(scenario.concurrent)))
            touched = [group] + ([spare] if scenario.fallback is not None else [])
            if scenario.read == 0:
                await settled(router, touched)
            await assert_released(router, touched, refunded=all(failed))
        finally:
            await router.aclose()


@PROPERTY
@given(scenario=scenarios(stream=False))
def test_any_upstream_reply_to_a_call(backend: dict[str, Any], scenario: Scenario) -> None:
    asyncio.run(run(scenario, backend))


@PROPERTY
@given(scenario=scenarios(stream=True))
def test_any_upstream_reply_to_a_stream(backend: dict[str, Any], scenario: Scenario) -> None:
    asyncio.run(run(scenario, backend))


# -- found by the properties -----------------------------------------------------------------

def _router(up_url: str, model: str, backend: dict[str, Any]) -> Router:
    return Router(model_list=[{"model_name": model, "litellm_params": {
        "model": f"openai/{model}", "api_base": up_url, "api_key": "sk-test-0123456789",
        "max_parallel_requests": 1, "tpm": TPM}}], timeout=TIMEOUT, num_retries=0, **backend)


async def _serve_once(answer: Reply, *, stream: bool, backend: dict[str, Any]
                      ) -> tuple[Any, float]:
    """(the response or the RequestError, seconds taken) of one chat call against `answer`."""
    model = f"hp{next(_names)}"
    async with scripted_upstream({model: reply(answer)}) as up:
        router = _router(up.url, model, backend)
        started = time.monotonic()
        try:
            served, _ = await router.serve("chat", {
                "model": model, "messages": [{"role": "user", "content": "hi"}],
                "stream": stream})
            out: Any = served.response
            if not isinstance(out, dict):
                out = [c async for c in out]
        except RequestError as exc:
            out = exc
        taken = time.monotonic() - started
        await assert_released(router, [model], refunded=isinstance(out, RequestError))
        await router.aclose()
        return out, taken


def test_a_trickled_reply_ends_with_its_timeout(backend: dict[str, Any]) -> None:
    # Each piece arrives within the read timeout, so only a bound on the whole call ends it.
    body = completion()
    pieces = tuple(body[i:i + 8] for i in range(0, len(body), 8))
    out, taken = asyncio.run(_serve_once(Reply(pieces=pieces, gap=TIMEOUT / 3),
                                         stream=False, backend=backend))
    assert isinstance(out, RequestTimeout), out
    assert taken <= TIMEOUT + MARGIN


def test_reply_without_choices_is_a_502() -> None:
    for stream, body in ((False, b"{}"), (False, b'{"id": "x"}'),
                         (True, b'data: {"": 0}\n\ndata: [DONE]\n\n')):
        answer = Reply(pieces=(body,), framing="chunked",
                       content_type="text/event-stream" if stream else "application/json")
        out, _ = asyncio.run(_serve_once(answer, stream=stream, backend={}))
        assert isinstance(out, RequestError) and out.status == 502, (body, out)


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_too_deep_to_relay_is_a_502(stream: bool) -> None:
    deep = b"".join([b"[" if i % 2 else b'{"k":' for i in range(300)]) + b"1" + b"".join(
        [b"]" if i % 2 else b"}" for i in reversed(range(300))])
    if stream:
        answer = Reply(pieces=(b'data: {"choices": [], "extra": ' + deep + b"}\n\n",
                               b"data: [DONE]\n\n"),
                       framing="chunked", content_type="text/event-stream")
    else:
        answer = Reply(pieces=(completion()[:-1] + b', "extra": ' + deep + b"}",))
    out, _ = asyncio.run(_serve_once(answer, stream=stream, backend={}))
    if not isinstance(out, RequestError):
        # Read, but too deep to write again: the gateway's encoder makes it a 502 there.
        chunks = out if isinstance(out, list) else [out]
        with pytest.raises(RequestError) as info:
            for chunk in chunks:
                json_bytes(chunk)
        out = info.value
    assert isinstance(out, RequestError) and out.status == 502, out


def test_stream_error_event_without_a_status_is_not_a_500() -> None:
    answer = Reply(pieces=(b'data: {"error": 1}\n\n',), framing="chunked",
                   content_type="text/event-stream")
    out, _ = asyncio.run(_serve_once(answer, stream=True, backend={}))
    assert isinstance(out, RequestError) and out.status == 502, out


def _mock_router() -> Router:
    return Router(model_list=[{"model_name": "mocked", "litellm_params": {
        "model": "gpt-4o-mini", "mock_response": "fine"}}], timeout=TIMEOUT)


@pytest.mark.parametrize("mock", [
    {"error": 0}, {"error": []}, {"error": {"status": "soon"}},
    {"error": {"status": 429, "retry_after": "soon"}},
    {"error": {"status": 503, "retry_after": float("inf")}},
    {"error": {"status": 429, "retry_after": -1}},
    {"choices": 2}, {"choices": [1, 2]}, {"choices": None}, {"choices": []},
])
def test_a_request_mock_the_mock_cannot_answer_is_a_400(mock: dict[str, Any]) -> None:
    async def call() -> RequestError:
        router = _mock_router()
        try:
            with pytest.raises(RequestError) as info:
                await router.serve("chat", {"model": "mocked", "mock_response": mock,
                                            "messages": [{"role": "user", "content": "hi"}]})
            return info.value
        finally:
            await router.aclose()

    error = asyncio.run(call())
    assert (error.status, error.param) == (400, "mock_response"), error


def test_a_request_mock_failing_in_the_adapter_is_no_500() -> None:
    # `n` the mock cannot read (a 400 once `n` is validated; until then the adapter fails)
    async def call() -> RequestError:
        router = _mock_router()
        try:
            with pytest.raises(RequestError) as info:
                await router.serve("text", {"model": "mocked", "mock_response": "hi",
                                            "prompt": "hi", "n": ":"})
            return info.value
        finally:
            await router.aclose()

    error = asyncio.run(call())
    assert 400 <= error.status <= 599 and not isinstance(error, InternalError), error
