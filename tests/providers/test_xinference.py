"""Xinference (`xinference/<model uid>`): an OpenAI-compatible server at `api_base`, through a
real gateway process with the openai SDK; its api_base is checked when the config loads."""

from __future__ import annotations

import openai
import pytest

from router.config import parse_config
from router.errors import ConfigError
from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "Hi"}]
KEY = "xinference-key-0123456789"


@pytest.fixture(scope="module")
def gateway(fake_openai):
    from tests.support.gateway import clean_env, start_gateway

    def entry(name: str, model: str) -> dict:
        return {"model_name": name, "litellm_params": {"model": f"xinference/{model}",
                                                       "api_base": fake_openai.url}}

    config = {"model_list": [
        entry("xi", "qwen2-instruct"), entry("xi-embed", "bge-small-en"),
        entry("xi-busy", "qwen+retry_after=4"), entry("xi-down", "qwen+status=503"),
        entry("xi-long", "qwen+error=context_length"),
        {"model_name": "xi-env", "litellm_params": {"model": "xinference/from-env"}},
    ], "router_settings": {"num_retries": 0}}
    env = {**clean_env(), "XINFERENCE_API_KEY": KEY, "XINFERENCE_API_BASE": fake_openai.url}
    gw = start_gateway(config, env)
    yield gw
    gw.stop()


def test_chat_stream_and_embeddings(gateway, fake_openai):
    client = gateway.openai()
    fake_openai.clear()
    assert client.chat.completions.create(model="xi", messages=MESSAGES).choices[
        0].message.content == DEFAULT_REPLY
    stream = client.chat.completions.create(model="xi", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == DEFAULT_REPLY
    vectors = client.embeddings.create(model="xi-embed", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.data[0].embedding
    assert client.chat.completions.create(model="xi-env", messages=MESSAGES).choices
    seen = fake_openai.requests()
    assert [(r["path"], r["body"]["model"]) for r in seen] == [
        ("/v1/chat/completions", "qwen2-instruct"), ("/v1/chat/completions", "qwen2-instruct"),
        ("/v1/embeddings", "bge-small-en"), ("/v1/chat/completions", "from-env")]
    assert {r["headers"].get("authorization") for r in seen} == {f"Bearer {KEY}"}


def test_errors_are_mapped(gateway):
    client = gateway.openai()
    with pytest.raises(openai.RateLimitError) as busy:
        client.chat.completions.create(model="xi-busy", messages=MESSAGES)
    assert busy.value.response.headers["retry-after"] == "4"
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="xi-down", messages=MESSAGES)
    assert down.value.status_code == 503
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="xi-long", messages=MESSAGES)
    assert long.value.code == "context_length_exceeded"


def test_api_base_is_required_when_the_config_loads():
    document = {"model_list": [{"model_name": "xi", "litellm_params": {
        "model": "xinference/qwen2-instruct"}}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(document, environ={})
    assert ("model_list[0].litellm_params.api_base: xinference/qwen2-instruct is a self-hosted "
            "server with no default URL: set api_base") in str(caught.value)
    # XINFERENCE_API_BASE stands in for it; the key stays optional.
    assert parse_config(document, environ={"XINFERENCE_API_BASE": "http://xi.internal:9997/v1"})
