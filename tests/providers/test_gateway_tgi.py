"""TGI and OpenAI-compatible prefixes through a real gateway process, with the openai SDK."""

from __future__ import annotations

from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "Hello"}]


def test_chat_and_text_completion(provider_gateway, fake_tgi):
    client = provider_gateway.openai()
    fake_tgi.clear()
    reply = client.chat.completions.create(model="tgi", messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    text = client.completions.create(model="tgi", prompt="Once upon a time", max_tokens=2)
    assert text.choices[0].text == "Hello from" and text.choices[0].finish_reason == "length"
    assert [r["path"] for r in fake_tgi.requests()] == ["/v1/chat/completions", "/generate"]


def test_custom_template_prompt_arrives_exactly(provider_gateway, fake_tgi):
    fake_tgi.clear()
    reply = provider_gateway.openai().chat.completions.create(model="tgi-raw",
                                                              messages=MESSAGES)
    expected = "<s><<BEGIN>>[USER]Hello[/USER]\n[BOT]"
    assert fake_tgi.requests()[0]["body"]["inputs"] == expected
    assert reply.choices[0].message.content == expected


def test_hosted_prefixes_need_no_api_base(provider_gateway, fake_openai):
    fake_openai.clear()
    client = provider_gateway.openai()
    assert client.chat.completions.create(model="groq-llama", messages=MESSAGES).choices
    assert client.chat.completions.create(model="vllm", messages=MESSAGES).choices
    seen = {r["body"]["model"]: r["headers"].get("authorization") for r in fake_openai.requests()}
    assert seen == {"llama3-70b-8192": "Bearer gsk-gateway-key",
                    "meta-llama/Llama-3-8B": None}
