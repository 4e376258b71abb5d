"""Ollama through a real gateway process, driven with the openai SDK."""

from __future__ import annotations

import pytest

from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Bye"}]


def test_chat_stream_and_embeddings(provider_gateway, fake_ollama):
    client = provider_gateway.openai()
    reply = client.chat.completions.create(model="llama", messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    stream = client.chat.completions.create(model="llama", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
    vectors = client.embeddings.create(model="nomic", input=["abc"])
    # The SDK asks for base64 (float32), so compare approximately.
    assert vectors.data[0].embedding == pytest.approx([0.3, 0.4, 0.5, 0.6])


def test_custom_template_prompt_arrives_exactly(provider_gateway, fake_ollama):
    fake_ollama.clear()
    reply = provider_gateway.openai().chat.completions.create(model="llama-raw",
                                                              messages=MESSAGES)
    expected = ("<s><<BEGIN>>[SYS]S[/SYS]\n[USER]Hello[/USER]\n[BOT]Hi[/BOT]\n</s>"
                "<s>[USER]Bye[/USER]\n[BOT]")
    [seen] = fake_ollama.requests()
    assert seen["path"] == "/api/generate" and seen["body"]["prompt"] == expected
    assert reply.choices[0].message.content == expected
