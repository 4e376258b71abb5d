"""The mock_response provider: OpenAI-shaped answers and configured errors, no network."""

from __future__ import annotations

import base64
import struct
import time

import pytest

from router.errors import (
    ContextWindowExceeded,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamUnavailable,
)
from router.providers.catalog import get_provider
from router.tokens import counter_for
from tests.providers.helpers import collect, context, deployment

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
REPLY = "Hi! How can I help you today?"


def mock_dep(mock_response=REPLY, **params):
    return deployment("mock", "gpt-4o", mock_response=mock_response, params=params)


async def test_chat_reply_and_usage_from_the_token_counter(http):
    result = await get_provider("mock").chat(mock_dep(), {"messages": MESSAGES, "n": 2},
                                             context(http))
    assert result["object"] == "chat.completion"
    assert [c["message"]["content"] for c in result["choices"]] == [REPLY, REPLY]
    counter = counter_for("gpt-4o")
    assert result["usage"] == {
        "prompt_tokens": counter.messages(MESSAGES),
        "completion_tokens": 2 * counter.text(REPLY),
        "total_tokens": counter.messages(MESSAGES) + 2 * counter.text(REPLY),
    }


async def test_stream_pieces_join_to_the_reply_and_end_with_usage(http):
    chunks = await collect(get_provider("mock").chat_stream(
        mock_dep(), {"messages": MESSAGES, "stream": True}, context(http)))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == REPLY
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == counter_for("gpt-4o").text(REPLY)
    assert len({c["id"] for c in chunks}) == 1


async def test_text_completion_and_stream(http):
    provider = get_provider("mock")
    result = await provider.text_completion(mock_dep(), {"prompt": "Say hi"}, context(http))
    assert result["object"] == "text_completion" and result["choices"][0]["text"] == REPLY
    chunks = await collect(provider.text_completion_stream(mock_dep(), {"prompt": "Say hi"},
                                                           context(http)))
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == REPLY
    assert chunks[-1]["usage"]["prompt_tokens"] == counter_for("gpt-4o").text("Say hi")


async def test_embeddings_are_deterministic_in_float_and_base64(http):
    provider = get_provider("mock")
    floats = await provider.embed(mock_dep(), {"input": ["a", "b"], "dimensions": 4},
                                  context(http))
    again = await provider.embed(mock_dep(), {"input": "a", "encoding_format": "base64",
                                              "dimensions": 4}, context(http))
    decoded = struct.unpack("<4f", base64.b64decode(again["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)
    assert floats["data"][0]["embedding"] != floats["data"][1]["embedding"]


@pytest.mark.parametrize(
    ("spec", "error", "status", "message"),
    [
        ("litellm.RateLimitError", RateLimited, 429, "mock RateLimitError"),
        ("litellm.RateLimitError: slow down", RateLimited, 429, "slow down"),
        ("ContextWindowExceededError: too long", ContextWindowExceeded, 400, "too long"),
        ("litellm.APIConnectionError", UpstreamUnavailable, 503, "mock APIConnectionError"),
        ("litellm.ServiceUnavailableError", UpstreamError, 503, "mock ServiceUnavailableError"),
        ("Exception: boom", UpstreamError, 502, "boom (the upstream answered HTTP 500)"),
    ],
)
async def test_error_specs_raise_their_errors(http, spec, error, status, message):
    with pytest.raises(error) as caught:
        await get_provider("mock").chat(mock_dep(spec), {"messages": MESSAGES}, context(http))
    assert caught.value.status == status and caught.value.message == message


async def test_mapping_error_spec_carries_status_and_retry_after(http):
    spec = {"error": {"status": 429, "message": "busy", "retry_after": 2}}
    with pytest.raises(RateLimited) as caught:
        await collect(get_provider("mock").chat_stream(mock_dep(spec), {"messages": MESSAGES},
                                                       context(http)))
    assert caught.value.retry_after == 2


async def test_text_that_merely_mentions_an_error_is_a_reply(http):
    reply = "RateLimitError is what you get when you go too fast"
    result = await get_provider("mock").chat(mock_dep(reply), {"messages": MESSAGES},
                                             context(http))
    assert result["choices"][0]["message"]["content"] == reply


async def test_mock_delay_and_mock_timeout(http):
    started = time.monotonic()
    await get_provider("mock").chat(mock_dep(mock_delay=0.2), {"messages": MESSAGES},
                                    context(http))
    assert 0.18 < time.monotonic() - started < 1.0
    with pytest.raises(RequestTimeout):
        await get_provider("mock").chat(mock_dep(mock_timeout=True), {"messages": MESSAGES},
                                        context(http, timeout=0.05))


async def test_mock_tool_calls(http):
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "lookup", "arguments": "{}"}}]
    result = await get_provider("mock").chat(mock_dep(mock_tool_calls=calls),
                                             {"messages": MESSAGES}, context(http))
    assert result["choices"][0]["finish_reason"] == "tool_calls"
    assert result["choices"][0]["message"]["tool_calls"] == calls
