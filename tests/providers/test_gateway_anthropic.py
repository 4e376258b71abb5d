"""Anthropic through a real gateway process, driven with the openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from tests.providers.conftest import ANTHROPIC_KEY
from tests.support.fake_openai import DEFAULT_REPLY

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_chat_stream_and_tools(provider_gateway, fake_anthropic):
    client = provider_gateway.openai()
    fake_anthropic.clear()
    reply = client.chat.completions.create(model="claude", messages=[
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.usage.prompt_tokens == 3
    seen = fake_anthropic.requests()[0]
    assert seen["headers"]["x-api-key"] == ANTHROPIC_KEY and seen["body"]["system"] == "Be terse."
    stream = client.chat.completions.create(model="claude", stream=True,
                                            messages=[{"role": "user", "content": "Hi"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
    called = client.chat.completions.create(model="claude", tools=TOOLS,
                                            messages=[{"role": "user", "content": "Paris?"}])
    call = called.choices[0].message.tool_calls[0]
    assert called.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_overloaded_reaches_the_client_as_503(provider_gateway):
    with pytest.raises(openai.InternalServerError) as caught:
        provider_gateway.openai().chat.completions.create(
            model="claude-busy", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 503
    assert ANTHROPIC_KEY not in str(caught.value.body)
