"""Cloudflare Workers AI through a real gateway process (openai SDK) against a loopback fake."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from router.providers.catalog import get_provider
from tests.providers.helpers import deployment
from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server

KEY = "cf-gateway-key-0123456789"
LLAMA = "@cf/meta/llama-3-8b-instruct"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]


@pytest.fixture(scope="module")
def fake_cloudflare() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_cloudflare", env={"FAKE_CLOUDFLARE_API_KEY": KEY})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fake_cloudflare):
    from tests.support.gateway import clean_env, start_gateway

    base = f"{fake_cloudflare.base}/client/v4/accounts/acc-0123/ai/run"

    def entry(name: str, model: str, **params) -> dict:
        return {"model_name": name, "litellm_params": {"model": f"cloudflare/{model}",
                                                       "api_base": base, **params}}

    config = {"model_list": [
        entry("cf", LLAMA),
        entry("cf-echo", f"{LLAMA}+echo=1"),
        entry("cf-embed", "@cf/baai/bge-base-en-v1.5"),
        entry("cf-busy", f"{LLAMA}+retry_after=9"),
        entry("cf-down", f"{LLAMA}+status=503"),
        entry("cf-broken", f"{LLAMA}+status=500"),
        entry("cf-long", f"{LLAMA}+error=context_length"),
        entry("cf-soft", f"{LLAMA}+soft_error=1"),
        entry("cf-wrong-key", LLAMA, api_key="not-the-key-0000"),
        {"model_name": "cf-no-account", "litellm_params": {"model": f"cloudflare/{LLAMA}"}},
    ], "router_settings": {"num_retries": 0}}
    gw = start_gateway(config, {**clean_env(), "CLOUDFLARE_API_KEY": KEY})
    yield gw
    gw.stop()


def test_chat_stream_and_usage(gateway, fake_cloudflare):
    client = gateway.openai()
    fake_cloudflare.clear()
    reply = client.chat.completions.create(model="cf", messages=MESSAGES, max_tokens=30,
                                           temperature=0.2)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.usage.prompt_tokens == 4 and reply.usage.completion_tokens == 5
    chunks = list(client.chat.completions.create(model="cf", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage.total_tokens == 9
    first, streamed = fake_cloudflare.requests()
    assert first["path"] == f"/client/v4/accounts/acc-0123/ai/run/{LLAMA}"
    assert first["account"] == "acc-0123" and first["cf_model"] == LLAMA
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    assert first["body"] == {"messages": MESSAGES, "max_tokens": 30, "temperature": 0.2}
    assert streamed["body"]["stream"] is True


def test_text_completion_sends_the_prompt(gateway, fake_cloudflare):
    fake_cloudflare.clear()
    text = gateway.openai().completions.create(model="cf-echo", prompt="Say this back")
    assert text.choices[0].text == "Say this back"
    assert fake_cloudflare.requests()[0]["body"] == {"prompt": "Say this back"}


def test_embeddings(gateway, fake_cloudflare):
    fake_cloudflare.clear()
    result = gateway.openai().embeddings.create(model="cf-embed", input=["hello", "hi"])
    assert [d.embedding for d in result.data] == [pytest.approx([0.5, 0.5, 0.25]),
                                                  pytest.approx([0.2, 0.5, 0.25])]
    assert fake_cloudflare.requests()[0]["body"] == {"text": ["hello", "hi"]}


def test_errors_are_mapped(gateway):
    client = gateway.openai()
    with pytest.raises(openai.RateLimitError) as busy:
        client.chat.completions.create(model="cf-busy", messages=MESSAGES)
    assert busy.value.response.headers["retry-after"] == "9"
    assert "Capacity temporarily exceeded" in busy.value.message
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="cf-down", messages=MESSAGES)
    assert down.value.status_code == 503
    with pytest.raises(openai.APIStatusError) as broken:
        client.chat.completions.create(model="cf-broken", messages=MESSAGES, stream=True)
    assert broken.value.status_code >= 500 and "Internal server error" in broken.value.message
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="cf-long", messages=MESSAGES)
    assert long.value.code == "context_length_exceeded"
    with pytest.raises(openai.APIStatusError) as soft:
        client.chat.completions.create(model="cf-soft", messages=MESSAGES)
    assert soft.value.status_code == 502 and "Invalid or incomplete input" in soft.value.message
    with pytest.raises(openai.AuthenticationError) as wrong:
        client.chat.completions.create(model="cf-wrong-key", messages=MESSAGES)
    assert "Authentication error" in wrong.value.message
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model="cf", messages=MESSAGES, logit_bias={"1": 2})
    assert "cloudflare does not support the parameter `logit_bias`" in unsupported.value.message
    with pytest.raises(openai.BadRequestError) as no_account:
        client.chat.completions.create(model="cf-no-account", messages=MESSAGES)
    assert "CLOUDFLARE_ACCOUNT_ID" in no_account.value.message


def test_the_account_names_the_default_url():
    dep = deployment("cloudflare", LLAMA, env={"CLOUDFLARE_ACCOUNT_ID": "abc123"})
    url = get_provider("cloudflare")._url(dep)  # type: ignore[attr-defined]
    assert url == f"https://api.cloudflare.com/client/v4/accounts/abc123/ai/run/{LLAMA}"
    odd = deployment("cloudflare", "@cf/x/../y?z", env={"CLOUDFLARE_ACCOUNT_ID": "abc123"})
    assert get_provider("cloudflare")._url(odd).endswith(  # type: ignore[attr-defined]
        "/ai/run/@cf/x/%2E%2E/y%3Fz")
