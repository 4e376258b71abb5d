"""Azure OpenAI with Entra ID client credentials and static AD tokens, through a real gateway
(openai SDK): a fake Entra issues signed tokens, the fake Azure resource accepts only those."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server

CLIENT_SECRET = "entra-client-secret-0123456789"
SIGNING_KEY = "entra-signing-key-0123456789"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def fake_entra() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_entra", env={
        "FAKE_ENTRA_CLIENT_SECRET": CLIENT_SECRET, "FAKE_ENTRA_SIGNING_KEY": SIGNING_KEY})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_resource() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_azure",
                          env={"FAKE_ENTRA_SIGNING_KEY": SIGNING_KEY})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fake_entra, fake_resource):
    from tests.support.gateway import clean_env, start_gateway

    def entry(name: str, model: str, client: str, **params) -> dict:
        return {"model_name": name, "litellm_params": {
            "model": f"azure/{model}", "api_base": fake_resource.base, "api_version": "2024-10-21",
            "tenant_id": TENANT, "client_id": client,
            "client_secret": "os.environ/AZURE_CLIENT_SECRET", **params}}

    config = {"model_list": [
        entry("entra", "gpt-4o", "app-0001+delay=0.3"),
        entry("entra-embed", "ada-002", "app-0001+delay=0.3"),
        entry("entra-short", "gpt-4o", "app-0002+short=1"),
        entry("entra-wrong", "gpt-4o", "app-0003", client_secret="not-the-secret-0000"),
        entry("entra-down", "gpt-4o", "app-0004+status=503"),
        entry("entra-busy", "gpt-4o+retry_after=3", "app-0001+delay=0.3"),
        {"model_name": "ad-token", "litellm_params": {
            "model": "azure/gpt-4o", "api_base": fake_resource.base,
            "azure_ad_token": "os.environ/MY_AD_TOKEN"}},
    ], "router_settings": {"num_retries": 0}}
    env = {**clean_env(), "AZURE_AUTHORITY_HOST": fake_entra.base,
           "AZURE_CLIENT_SECRET": CLIENT_SECRET, "MY_AD_TOKEN": "static-ad-token-0123456789",
           "AZURE_API_KEY": "must-not-be-used-0123"}
    gw = start_gateway(config, env)
    yield gw
    gw.stop()


def test_concurrent_calls_share_one_token(gateway, fake_entra, fake_resource):
    fake_entra.clear()
    fake_resource.clear()

    async def burst() -> list[str]:
        client = gateway.async_openai()
        replies = await asyncio.gather(*(client.chat.completions.create(
            model="entra", messages=MESSAGES) for _ in range(8)))
        return [r.choices[0].message.content for r in replies]

    assert asyncio.run(burst()) == [DEFAULT_REPLY] * 8
    # Another deployment of the same app reuses the token; embeddings and streams too.
    client = gateway.openai()
    assert client.embeddings.create(model="entra-embed", input="hi").data
    stream = client.chat.completions.create(model="entra", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
    [call] = fake_entra.requests()
    assert call["tenant"] == TENANT
    assert call["form"] == {"client_id": "app-0001+delay=0.3", "client_secret": CLIENT_SECRET,
                            "grant_type": "client_credentials",
                            "scope": "https://cognitiveservices.azure.com/.default"}
    seen = fake_resource.requests()
    assert len(seen) == 10
    assert len({r["headers"]["authorization"] for r in seen}) == 1
    assert not any("api-key" in r["headers"] for r in seen)


def test_a_token_near_expiry_is_fetched_again(gateway, fake_entra, fake_resource):
    fake_entra.clear()
    fake_resource.clear()
    client = gateway.openai()
    for _ in range(2):
        client.chat.completions.create(model="entra-short", messages=MESSAGES)
    assert len(fake_entra.requests()) == 2
    assert len({r["headers"]["authorization"] for r in fake_resource.requests()}) == 2


def test_token_failures_and_upstream_errors(gateway):
    client = gateway.openai()
    with pytest.raises(openai.AuthenticationError) as wrong:
        client.chat.completions.create(model="entra-wrong", messages=MESSAGES)
    assert "AADSTS7000215" in wrong.value.message
    assert "not-the-secret-0000" not in wrong.value.message
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="entra-down", messages=MESSAGES)
    assert down.value.status_code == 503
    with pytest.raises(openai.RateLimitError) as busy:
        client.chat.completions.create(model="entra-busy", messages=MESSAGES)
    assert busy.value.response.headers["retry-after"] == "3"


def test_a_static_ad_token_from_the_environment(gateway, fake_resource, fake_entra):
    fake_resource.clear()
    fake_entra.clear()
    # The fake resource accepts only Entra-issued tokens: this one is refused, as Azure would
    # refuse a stale token, which shows it was sent as the bearer (and not the api key).
    with pytest.raises(openai.AuthenticationError):
        gateway.openai().chat.completions.create(model="ad-token", messages=MESSAGES)
    [seen] = fake_resource.requests()
    assert seen["headers"]["authorization"] == "Bearer static-ad-token-0123456789"
    assert "api-key" not in seen["headers"]
    assert fake_entra.requests() == []
