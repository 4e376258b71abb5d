"""Azure OpenAI through a real gateway process, driven with the openai SDK."""

from __future__ import annotations

import openai
import pytest

from tests.support.fake_openai import DEFAULT_REPLY


def test_chat_stream_and_embeddings(provider_gateway, fake_azure):
    client = provider_gateway.openai()
    fake_azure.clear()
    reply = client.chat.completions.create(model="azure-gpt",
                                           messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content == DEFAULT_REPLY
    stream = client.chat.completions.create(model="azure-gpt", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "Hello"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage.total_tokens > 0
    vectors = client.embeddings.create(model="azure-embed", input=["a", "b"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8
    paths = {r["path"] for r in fake_azure.requests()}
    assert paths == {"/openai/deployments/my-gpt4o/chat/completions",
                     "/openai/deployments/ada-002/embeddings"}
    assert all(r["headers"]["api-key"] == "azure-gateway-key" for r in fake_azure.requests())


def test_content_filter_is_a_400_with_its_code(provider_gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        provider_gateway.openai().chat.completions.create(
            model="azure-filtered", messages=[{"role": "user", "content": "bad"}])
    assert caught.value.code == "content_policy_violation"
