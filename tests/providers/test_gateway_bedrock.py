"""Bedrock through a real gateway process: SigV4 verified by the fake, openai SDK as client."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_signed_chat_stream_and_embeddings(provider_gateway, fake_bedrock):
    client = provider_gateway.openai()
    fake_bedrock.clear()
    reply = client.chat.completions.create(model="bedrock-claude", messages=MESSAGES,
                                           max_tokens=20)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    stream = client.chat.completions.create(model="bedrock-claude", messages=MESSAGES,
                                            stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
    vectors = client.embeddings.create(model="bedrock-titan", input="hello", dimensions=3)
    assert vectors.data[0].embedding == pytest.approx([0.05, 0.06, 0.07])
    seen = fake_bedrock.requests()
    assert [r["sigv4"]["region"] for r in seen] == ["us-west-2"] * 3
    assert [r["action"] for r in seen] == ["converse", "converse-stream", "invoke"]


def test_custom_template_prompt_arrives_exactly(provider_gateway, fake_bedrock):
    fake_bedrock.clear()
    reply = provider_gateway.openai().chat.completions.create(model="bedrock-llama",
                                                              messages=MESSAGES)
    expected = "<s><<BEGIN>>[SYS]Be brief.[/SYS]\n[USER]Hi[/USER]\n[BOT]"
    assert fake_bedrock.requests()[0]["body"]["prompt"] == expected
    assert reply.choices[0].message.content == expected


def test_context_window_error(provider_gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        provider_gateway.openai().chat.completions.create(model="bedrock-long",
                                                          messages=MESSAGES)
    assert caught.value.code == "context_length_exceeded"
