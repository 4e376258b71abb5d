"""The Azure OpenAI adapter against a fake Azure resource (URL layout, api-key, errors)."""

from __future__ import annotations

import pytest

from router.errors import AuthenticationFailed, ContentPolicyViolation, RateLimited
from router.providers.catalog import get_provider
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

KEY = "azure-key-0123456789"
MESSAGES = [{"role": "user", "content": "hello"}]


def dep(fake, name="my-gpt4o", **fields):
    fields.setdefault("api_key", KEY)
    fields.setdefault("api_version", "2024-06-01")
    return deployment("azure", name, api_base=fake.base, **fields)


async def test_chat_uses_the_deployment_url_and_api_key(fake_azure, http):
    fake_azure.clear()
    result = await get_provider("azure").chat(dep(fake_azure), {"model": "my-gpt4o",
                                                                "messages": MESSAGES},
                                              context(http))
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    [seen] = fake_azure.requests()
    assert seen["path"] == "/openai/deployments/my-gpt4o/chat/completions"
    assert seen["query"] == "api-version=2024-06-01"
    assert seen["headers"]["api-key"] == KEY and "authorization" not in seen["headers"]


async def test_stream_and_embeddings(fake_azure, http):
    fake_azure.clear()
    chunks = await collect(get_provider("azure").chat_stream(
        dep(fake_azure), {"model": "my-gpt4o", "messages": MESSAGES}, context(http)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY and chunks[-1]["usage"]["total_tokens"] > 0
    emb = await get_provider("azure").embed(dep(fake_azure, "ada"), {"model": "ada",
                                                                      "input": ["x", "y"]},
                                            context(http))
    assert len(emb["data"]) == 2
    paths = [r["path"] for r in fake_azure.requests()]
    assert paths == ["/openai/deployments/my-gpt4o/chat/completions",
                     "/openai/deployments/ada/embeddings"]


async def test_azure_ad_token_is_a_bearer_token(fake_azure, http, monkeypatch):
    monkeypatch.delenv("AZURE_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    fake_azure.clear()
    d = dep(fake_azure, api_key=None, params={"azure_ad_token": "ad-token-xyz"})
    await get_provider("azure").chat(d, {"model": "m", "messages": MESSAGES}, context(http))
    assert fake_azure.requests()[0]["headers"]["authorization"] == "Bearer ad-token-xyz"


async def test_v1_api_layout(fake_azure, http):
    fake_azure.clear()
    d = deployment("azure", "gpt-4o", api_base=fake_azure.base + "/openai/v1", api_key=KEY)
    await get_provider("azure").chat(d, {"model": "gpt-4o", "messages": MESSAGES},
                                     context(http))
    assert fake_azure.requests()[0]["path"] == "/openai/v1/chat/completions"


async def test_default_api_version_and_env_fallbacks(fake_azure, http, monkeypatch):
    monkeypatch.setenv("AZURE_API_BASE", fake_azure.base)
    monkeypatch.setenv("AZURE_API_KEY", "env-azure-key")
    monkeypatch.delenv("AZURE_API_VERSION", raising=False)
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    fake_azure.clear()
    await get_provider("azure").chat(deployment("azure", "dep1"),
                                     {"model": "dep1", "messages": MESSAGES}, context(http))
    [seen] = fake_azure.requests()
    assert seen["query"] == "api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "env-azure-key"


async def test_content_filter_error(fake_azure, http):
    with pytest.raises(ContentPolicyViolation) as caught:
        await get_provider("azure").chat(dep(fake_azure, "m"), {
            "model": "m+error=content_filter", "messages": MESSAGES}, context(http))
    assert caught.value.status == 400 and caught.value.code == "content_policy_violation"


async def test_missing_key_and_throttling(fake_azure, http, monkeypatch):
    monkeypatch.delenv("AZURE_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("AZURE_AD_TOKEN", raising=False)
    with pytest.raises(AuthenticationFailed):
        await get_provider("azure").chat(dep(fake_azure, api_key=None),
                                         {"model": "m", "messages": MESSAGES}, context(http))
    with pytest.raises(RateLimited) as caught:
        await get_provider("azure").chat(dep(fake_azure), {
            "model": "m+retry_after=7", "messages": MESSAGES}, context(http))
    assert caught.value.retry_after == 7
