"""`environment_variables:` in the config reach every provider exactly as the process
environment would: keys, base URLs, API versions, AWS credentials and region. The gateway's
own process environment holds none of them, so each request below works only if the adapter
read the config's environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.conftest import BEDROCK_SECRET
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
VARIABLES = {
    "OPENAI_API_KEY": "env-openai-key-0123456789",
    "GROQ_API_KEY": "env-groq-key-0123456789",
    "ANTHROPIC_API_KEY": "env-anthropic-key-0123456789",
    "AZURE_API_KEY": "env-azure-key-0123456789",
    "AZURE_API_VERSION": "2024-06-01",
    "HF_TOKEN": "env-hf-token-0123456789",
    "AWS_ACCESS_KEY_ID": "AKIDENVIRONMENTVAR01",
    "AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET,
    "AWS_REGION": "eu-west-3",
}


@pytest.fixture(scope="module")
def env_gateway(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream,
                fake_azure: FakeUpstream, fake_bedrock: FakeUpstream,
                fake_ollama: FakeUpstream, fake_tgi: FakeUpstream) -> Iterator[Gateway]:
    variables = {
        **VARIABLES,
        "OPENAI_API_BASE": fake_openai.url,
        "GROQ_API_BASE": fake_openai.url,
        "ANTHROPIC_API_BASE": fake_anthropic.base,
        "AZURE_API_BASE": fake_azure.base,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": fake_bedrock.base,
        "OLLAMA_API_BASE": fake_ollama.base,
    }

    def entry(name: str, **params: str) -> dict:
        return {"model_name": name, "litellm_params": params}

    config = {
        "environment_variables": variables,
        "model_list": [
            entry("env-openai", model="openai/gpt-from-env"),
            entry("env-groq", model="groq/llama-from-env"),
            entry("env-claude", model="anthropic/claude-from-env"),
            entry("env-azure", model="azure/deployment-from-env"),
            entry("env-bedrock", model=f"bedrock/{CLAUDE}"),
            entry("env-ollama", model="ollama_chat/llama-from-env"),
            entry("env-tgi", model="huggingface/org/tgi-from-env", api_base=fake_tgi.base),
        ],
        "router_settings": {"num_retries": 0},
    }
    process_env = {k: v for k, v in clean_env().items()
                   if k not in variables and not k.startswith("AWS_")}
    # No shared credentials file or instance metadata either: only the config's variables.
    process_env.update({"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE":
                        "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"})
    gateway = start_gateway(config, process_env)
    yield gateway
    gateway.stop()


def _ask(gw: Gateway, model: str) -> None:
    resp = gw.client().post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"]


def _last(fake: FakeUpstream, model: str) -> dict:
    return [r for r in fake.requests() if r["body"].get("model") == model
            or r.get("model_id") == model][-1]


def test_openai_compatible_keys_and_bases(env_gateway: Gateway,
                                          fake_openai: FakeUpstream) -> None:
    _ask(env_gateway, "env-openai")
    _ask(env_gateway, "env-groq")
    openai_call = _last(fake_openai, "gpt-from-env")
    assert openai_call["headers"]["authorization"] == f"Bearer {VARIABLES['OPENAI_API_KEY']}"
    groq_call = _last(fake_openai, "llama-from-env")
    assert groq_call["headers"]["authorization"] == f"Bearer {VARIABLES['GROQ_API_KEY']}"


def test_anthropic_key_and_base(env_gateway: Gateway, fake_anthropic: FakeUpstream) -> None:
    _ask(env_gateway, "env-claude")
    call = _last(fake_anthropic, "claude-from-env")
    assert call["headers"]["x-api-key"] == VARIABLES["ANTHROPIC_API_KEY"]


def test_azure_key_base_and_version(env_gateway: Gateway, fake_azure: FakeUpstream) -> None:
    fake_azure.clear()
    _ask(env_gateway, "env-azure")
    [call] = fake_azure.requests()
    assert call["path"] == "/openai/deployments/deployment-from-env/chat/completions"
    assert call["query"] == "api-version=2024-06-01"
    assert call["headers"]["api-key"] == VARIABLES["AZURE_API_KEY"]


def test_bedrock_signed_with_the_configs_aws_variables(env_gateway: Gateway,
                                                       fake_bedrock: FakeUpstream) -> None:
    fake_bedrock.clear()
    _ask(env_gateway, "env-bedrock")
    [call] = fake_bedrock.requests()
    # The fake re-computed the signature with the secret: the config's secret signed it.
    assert call["sigv4"]["key_id"] == VARIABLES["AWS_ACCESS_KEY_ID"]
    assert call["sigv4"]["region"] == VARIABLES["AWS_REGION"]


def test_ollama_base_and_tgi_token(env_gateway: Gateway, fake_ollama: FakeUpstream,
                                   fake_tgi: FakeUpstream) -> None:
    _ask(env_gateway, "env-ollama")
    assert _last(fake_ollama, "llama-from-env")
    _ask(env_gateway, "env-tgi")
    call = [r for r in fake_tgi.requests() if r["body"].get("model") == "org/tgi-from-env"][-1]
    assert call["headers"]["authorization"] == f"Bearer {VARIABLES['HF_TOKEN']}"
