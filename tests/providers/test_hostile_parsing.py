"""Hostile bytes against the parsers themselves: Retry-After values, SSE framing and wrong-shaped
replies to each adapter family, from a raw loopback upstream. Only `RequestError`s may escape."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.errors import RequestError, UpstreamError
from router.httpclient import UpstreamClient
from router.providers._errors import retry_after_seconds
from router.providers._wire import iter_sse
from router.providers.anthropic import AnthropicProvider
from router.providers.bedrock import BedrockProvider
from router.providers.ollama import OllamaProvider
from router.providers.openai import OpenAIProvider
from router.providers.tgi import TGIProvider
from tests.providers.helpers import context, deployment
from tests.support.fake_raw import RawUpstream, http_response

_names = itertools.count()
HEADERS = ("retry-after", "retry-after-ms", "x-ratelimit-reset-requests",
           "x-ratelimit-reset-tokens")


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    with RawUpstream() as upstream:
        yield upstream


# -- Retry-After -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e309", "nan", "inf", "-inf", "-5", "99999999999999999999",
                                   "Fri, 31 Dec 9999 23:59:59 GMT", "garbage", "1e309ms",
                                   "9" * 5000 + "h", "Mon, 99 Foo 2020 99:99:99", "\x00"])
@pytest.mark.parametrize("header", HEADERS)
def test_hostile_retry_after_values_are_finite(header: str, value: str) -> None:
    seconds = retry_after_seconds({header: value})
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= 86_400)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(HEADERS), st.one_of(
    st.text(), st.floats().map(repr), st.integers().map(str),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")))))
def test_any_header_value_gives_none_or_a_finite_wait(headers: dict[str, str]) -> None:
    seconds = retry_after_seconds(headers)
    assert seconds is None or (isinstance(seconds, float) and math.isfinite(seconds)
                               and seconds >= 0)


# -- SSE framing -----------------------------------------------------------------------------

class Pieces:
    """A response body delivered in the given pieces (what the network may do to it)."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


async def events(resp: Any) -> list[tuple[str, bytes]]:
    return [e async for e in iter_sse(resp)]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_an_event_split_at_every_byte_is_parsed_the_same(ending: bytes) -> None:
    body = (b"event: a" + ending + b"data: {\"x\": 1}" + ending + ending + b": comment" +
            ending + b"data: two" + ending + b"data: lines" + ending + ending)
    expected = [("a", b'{"x": 1}'), ("message", b"two\nlines")]
    assert asyncio.run(events(Pieces(body))) == expected
    for cut in range(1, len(body)):
        for second in (cut, min(cut + 1, len(body))):
            got = asyncio.run(events(Pieces(body[:cut], body[cut:second], body[second:])))
            assert got == expected, (cut, second)


def test_invalid_utf8_event_name_does_not_raise() -> None:
    assert asyncio.run(events(Pieces(b"event: \xff\xfe\ndata: 1\n\n"))) == [("\ufffd\ufffd", b"1")]


def chunk_values() -> st.SearchStrategy[Any]:
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                       st.floats(allow_nan=False),
                       st.text(max_size=5))
    usage = st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens",
                                             "total_tokens"]), scalar)
    choice = st.one_of(scalar, st.fixed_dictionaries({}, optional={
        "index": scalar, "delta": st.one_of(scalar, st.fixed_dictionaries(
            {}, optional={"content": scalar})), "finish_reason": scalar}))
    chunk = st.fixed_dictionaries({}, optional={
        "choices": st.one_of(scalar, st.lists(choice, max_size=2)),
        "usage": st.one_of(scalar, usage), "error": st.one_of(st.none(), scalar)})
    return st.one_of(scalar, st.lists(scalar, max_size=2), chunk)


def sse_bodies() -> st.SearchStrategy[bytes]:
    event = st.one_of(chunk_values().map(orjson.dumps), st.binary(max_size=12),
                      st.just(b'{"usage": {"prompt_tokens": 1' + b"0" * 40 + b"}}"),
                      st.just(b"[DONE]"))
    line_end = st.sampled_from([b"\n", b"\r\n", b"\r"])
    return st.lists(st.tuples(event, line_end), max_size=4).map(
        lambda evs: b"".join(b"data: " + e + end + end for e, end in evs))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=sse_bodies())
def test_only_request_errors_escape_the_openai_stream_parser(raw: RawUpstream,
                                                             body: bytes) -> None:
    name = f"sse-{next(_names)}"
    raw.script(name, http_response(200, body, content_type="text/event-stream"))

    async def run() -> None:
        client = UpstreamClient()
        dep = deployment("openai", name, api_base=raw.url, api_key="k")
        try:
            async for chunk in OpenAIProvider().chat_stream(
                    dep, {"model": name, "messages": []}, context(client)):  # type: ignore[arg-type]
                assert isinstance(chunk, dict)
                if chunk.get("usage") is not None:
                    assert all(type(v) is int for v in chunk["usage"].values()
                               if v is not None and not isinstance(v, dict))
        except RequestError:
            pass
        finally:
            await client.aclose()

    asyncio.run(run())


# -- wrong-shaped replies to every adapter family --------------------------------------------

def _bedrock(raw: RawUpstream, name: str) -> Any:
    return deployment("bedrock", name, params={
        "aws_access_key_id": "AKIDHOSTILE0001", "aws_secret_access_key": "hostile-secret-01",
        "aws_region_name": "us-west-2", "aws_bedrock_runtime_endpoint": raw.base})


CHAT = {"messages": [{"role": "user", "content": "hi"}]}
CASES = [
    ("anthropic", AnthropicProvider, {"content": "not a list", "usage": {"input_tokens": "x"}}),
    ("anthropic", AnthropicProvider, {"content": [{"type": "tool_use"}]}),
    ("anthropic", AnthropicProvider, {"type": "error", "error": {"type": "overloaded_error",
                                                                  "message": "busy"}}),
    ("ollama_chat", OllamaProvider, {"message": "hello", "done": True}),
    ("ollama_chat", OllamaProvider, {"message": {"content": "x", "tool_calls": [{}]}}),
    ("ollama_chat", OllamaProvider, [{"message": {}}]),
    ("huggingface", TGIProvider, {"choices": [5]}),
    ("openai", OpenAIProvider, {"choices": [{"index": 0, "message": "hello"}]}),
    ("openai", OpenAIProvider, {"choices": [{"message": {"tool_calls": "call me"}}]}),
    ("openai", OpenAIProvider, {"choices": [{"message": {"tool_calls": [5]}}]}),
    ("bedrock", BedrockProvider, {"output": {"message": {"content": [{"toolUse": {}}]}}}),
    ("bedrock", BedrockProvider, {"output": "nothing", "usage": {"inputTokens": "many"}}),
]


@pytest.mark.parametrize(("provider", "adapter", "reply"), CASES)
def test_wrong_shaped_reply_is_an_upstream_error(raw: RawUpstream, provider: str,
                                                 adapter: Any, reply: Any) -> None:
    name = f"shape-{next(_names)}"
    raw.script(name, http_response(200, reply))
    dep = (_bedrock(raw, name) if provider == "bedrock"
           else deployment(provider, name, api_base=raw.url, api_key="k"))

    async def run() -> None:
        client = UpstreamClient()
        try:
            with pytest.raises(UpstreamError) as caught:
                await adapter().chat(dep, {"model": name, **CHAT}, context(client))  # type: ignore[arg-type]
            assert 500 <= caught.value.status <= 599
        finally:
            await client.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(("provider", "adapter", "body", "content_type"), [
    ("anthropic", AnthropicProvider, b"event: message_start\ndata: [1]\n\n", "text/event-stream"),
    ("anthropic", AnthropicProvider,
     b'data: {"type": "content_block_start", "content_block": {"type": "tool_use"}}\n\n',
     "text/event-stream"),
    ("anthropic", AnthropicProvider, orjson.dumps({"id": "msg"}), "application/json"),
    ("ollama_chat", OllamaProvider, b'{"message": 5}\n', "application/x-ndjson"),
    ("ollama_chat", OllamaProvider, b"[1]\n", "application/x-ndjson"),
    ("ollama_chat", OllamaProvider, b"{nope\n", "application/x-ndjson"),
])
def test_wrong_shaped_stream_is_an_upstream_error(raw: RawUpstream, provider: str, adapter: Any,
                                                  body: bytes, content_type: str) -> None:
    name = f"shape-stream-{next(_names)}"
    raw.script(name, http_response(200, body, content_type=content_type))
    dep = deployment(provider, name, api_base=raw.url, api_key="k")

    async def run() -> None:
        client = UpstreamClient()
        try:
            with pytest.raises(UpstreamError):
                async for _ in adapter().chat_stream(dep, {"model": name, **CHAT},
                                                     context(client)):  # type: ignore[arg-type]
                    pass
        finally:
            await client.aclose()

    asyncio.run(run())
