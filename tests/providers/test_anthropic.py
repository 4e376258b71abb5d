"""The Anthropic adapter against a fake Messages API that checks the request shape."""

from __future__ import annotations

import orjson
import pytest

from router.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    UpstreamError,
)
from router.providers.catalog import get_provider
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

KEY = "sk-ant-test-0123456789"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def dep(fake, model="claude-3-5-sonnet", **fields):
    fields.setdefault("api_key", KEY)
    return deployment("anthropic", model, api_base=fake.base, **fields)


async def test_chat_translates_system_stop_and_usage(fake_anthropic, http):
    fake_anthropic.clear()
    messages = [{"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hello there"},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": [{"type": "text", "text": "How are you?"}]}]
    body = {"model": "claude-3-5-sonnet", "messages": messages, "temperature": 0.1,
            "stop": "END", "max_tokens": 50, "user": "u-1"}
    result = await get_provider("anthropic").chat(dep(fake_anthropic), body, context(http))
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
    [seen] = fake_anthropic.requests()
    assert seen["headers"]["x-api-key"] == KEY and seen["headers"]["anthropic-version"]
    sent = seen["body"]
    assert sent["system"] == "Be terse."
    assert sent["stop_sequences"] == ["END"] and sent["max_tokens"] == 50
    assert sent["metadata"] == {"user_id": "u-1"}
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


async def test_max_tokens_defaults_because_anthropic_requires_it(fake_anthropic, http):
    fake_anthropic.clear()
    await get_provider("anthropic").chat(
        dep(fake_anthropic), {"messages": [{"role": "user", "content": "hi"}]}, context(http))
    assert fake_anthropic.requests()[0]["body"]["max_tokens"] == 4096


async def test_tool_call_round_trip(fake_anthropic, http):
    fake_anthropic.clear()
    provider = get_provider("anthropic")
    first = await provider.chat(dep(fake_anthropic), {
        "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        context(http))
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    second = await provider.chat(dep(fake_anthropic), {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Paris?"}, choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]}, context(http))
    assert second["choices"][0]["message"]["content"] == DEFAULT_REPLY
    sent = fake_anthropic.requests()
    assert sent[0]["body"]["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent[0]["body"]["tools"][0]["input_schema"]["properties"]["city"]
    blocks = sent[1]["body"]["messages"]
    assert blocks[1]["content"][0] == {"type": "tool_use", "id": call["id"],
                                       "name": "get_weather", "input": {"city": "Paris"}}
    assert blocks[2]["content"][0]["type"] == "tool_result"


async def test_stream_text_finish_and_usage(fake_anthropic, http):
    chunks = await collect(get_provider("anthropic").chat_stream(
        dep(fake_anthropic), {"messages": [{"role": "user", "content": "say hello"}],
                              "stream": True}, context(http)))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 5,
                                   "total_tokens": 7}


async def test_stream_tool_call_arguments_arrive_in_pieces(fake_anthropic, http):
    chunks = await collect(get_provider("anthropic").chat_stream(
        dep(fake_anthropic), {"messages": [{"role": "user", "content": "weather?"}],
                              "tools": TOOLS}, context(http)))
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0]["id"] == "toolu_fake01" and calls[0]["function"]["name"] == "get_weather"
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert orjson.loads(arguments) == {"city": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_text_completion_goes_through_messages(fake_anthropic, http):
    result = await get_provider("anthropic").text_completion(
        dep(fake_anthropic), {"prompt": "Complete this"}, context(http))
    assert result["object"] == "text_completion"
    assert result["choices"][0]["text"] == DEFAULT_REPLY


async def test_overloaded_is_a_retryable_503(fake_anthropic, http):
    with pytest.raises(UpstreamError) as caught:
        await get_provider("anthropic").chat(
            dep(fake_anthropic, "claude+overloaded=1"),
            {"messages": [{"role": "user", "content": "hi"}]}, context(http))
    assert caught.value.status == 503 and caught.value.retryable
    assert "Overloaded" in caught.value.message


async def test_overloaded_mid_stream_raises_from_the_iterator(fake_anthropic, http):
    with pytest.raises(UpstreamError) as caught:
        await collect(get_provider("anthropic").chat_stream(
            dep(fake_anthropic, "claude+overloaded_mid_stream=1"),
            {"messages": [{"role": "user", "content": "hi"}]}, context(http)))
    assert caught.value.status == 503 and caught.value.retryable


async def test_prompt_too_long_is_a_context_window_error(fake_anthropic, http):
    with pytest.raises(ContextWindowExceeded):
        await get_provider("anthropic").chat(
            dep(fake_anthropic, "claude+error=context_length"),
            {"messages": [{"role": "user", "content": "hi"}]}, context(http))


async def test_missing_key_is_an_authentication_error(fake_anthropic, http, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(AuthenticationFailed):
        await get_provider("anthropic").chat(
            deployment("anthropic", "claude", api_base=fake_anthropic.base),
            {"messages": [{"role": "user", "content": "hi"}]}, context(http))


async def test_unsupported_params_fail_or_are_dropped(fake_anthropic, http):
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": 3, "n": 1}
    with pytest.raises(BadRequest) as caught:
        await get_provider("anthropic").chat(dep(fake_anthropic), body, context(http))
    assert caught.value.param == "seed" and "seed" in caught.value.message
    fake_anthropic.clear()
    await get_provider("anthropic").chat(dep(fake_anthropic), body,
                                         context(http, drop_params=True))
    assert "seed" not in fake_anthropic.requests()[0]["body"]


async def test_no_embeddings(fake_anthropic, http):
    with pytest.raises(BadRequest):
        await get_provider("anthropic").embed(dep(fake_anthropic), {"input": "x"}, context(http))
