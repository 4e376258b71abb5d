"""Fake upstream servers (one process each per session) and an HTTP client for adapter tests.

`fake_openai` comes from tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from tests.support.fake_openai import FakeUpstream, start_server

BEDROCK_SECRET = "test-secret-key-0123456789"
BEDROCK_API_KEY = "bedrock-api-key-0123456789"


@pytest_asyncio.fixture(loop_scope="function")  # the tests' own loop, not the session's
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _session_server(module: str, suffix: str = "",
                    env: dict[str, str] | None = None) -> Iterator[FakeUpstream]:
    server = start_server(module, suffix, env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_anthropic")


@pytest.fixture(scope="session")
def fake_azure() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_azure")


@pytest.fixture(scope="session")
def fake_ollama() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_ollama")


@pytest.fixture(scope="session")
def fake_tgi() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_tgi")



@pytest.fixture(scope="session")
def fake_bedrock() -> Iterator[FakeUpstream]:
    yield from _session_server("tests.support.fake_bedrock", env={
        "FAKE_AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET, "FAKE_BEDROCK_API_KEY": BEDROCK_API_KEY})


ANTHROPIC_KEY = "sk-ant-gateway-0123456789"
TEMPLATE = {
    "initial_prompt_value": "<<BEGIN>>",
    "roles": {"system": {"pre_message": "[SYS]", "post_message": "[/SYS]\n"},
              "user": {"pre_message": "[USER]", "post_message": "[/USER]\n"},
              "assistant": {"pre_message": "[BOT]", "post_message": "[/BOT]\n"}},
    "final_prompt_value": "[BOT]",
    "bos_token": "<s>",
    "eos_token": "</s>",
}


def _provider_config(fakes: dict[str, FakeUpstream], tokenizer: str) -> dict:
    aws = {"aws_access_key_id": "AKIDGATEWAYTEST0001", "aws_secret_access_key": BEDROCK_SECRET,
           "aws_region_name": "us-west-2", "aws_bedrock_runtime_endpoint": fakes["bedrock"].base}
    claude = "anthropic.claude-3-haiku-20240307-v1:0"

    def entry(name: str, **params) -> dict:
        return {"model_name": name, "litellm_params": params}

    return {"model_list": [
        entry("claude", model="anthropic/claude-3-5-sonnet", api_base=fakes["anthropic"].base,
              api_key="os.environ/GW_ANTHROPIC_KEY"),
        entry("claude-busy", model="anthropic/claude+overloaded=1",
              api_base=fakes["anthropic"].base, api_key="os.environ/GW_ANTHROPIC_KEY"),
        entry("azure-gpt", model="azure/my-gpt4o", api_base=fakes["azure"].base,
              api_version="2024-06-01", api_key="azure-gateway-key"),
        entry("azure-filtered", model="azure/m+error=content_filter",
              api_base=fakes["azure"].base, api_key="azure-gateway-key"),
        entry("azure-embed", model="azure/ada-002", api_base=fakes["azure"].base,
              api_key="azure-gateway-key"),
        entry("bedrock-claude", model=f"bedrock/{claude}", **aws),
        entry("bedrock-long", model=f"bedrock/{claude}+error=context_length", **aws),
        entry("bedrock-titan", model="bedrock/amazon.titan-embed-text-v2:0", **aws),
        entry("bedrock-llama", model="bedrock/meta.llama3-8b-instruct-v1:0+echo=1", **aws,
              **TEMPLATE),
        entry("llama", model="ollama_chat/llama3", api_base=fakes["ollama"].base),
        entry("llama-raw", model="ollama/llama2+echo=1", api_base=fakes["ollama"].base,
              **TEMPLATE),
        entry("nomic", model="ollama/nomic-embed-text", api_base=fakes["ollama"].base),
        entry("tgi", model="huggingface/mistralai/Mistral-7B", api_base=fakes["tgi"].base,
              api_key="hf_gateway_key"),
        entry("tgi-raw", model="huggingface/mistralai/Mistral-7B", api_base=fakes["tgi"].base,
              extra_headers={"x-fake": "echo=1"}, **TEMPLATE),
        entry("groq-llama", model="groq/llama3-70b-8192"),
        entry("vllm", model="hosted_vllm/meta-llama/Llama-3-8B", api_base=fakes["openai"].url),
        {"model_name": "custom-tok", "litellm_params": {"model": "openai/x",
                                                        "api_base": fakes["openai"].url},
         "model_info": {"custom_tokenizer": {"identifier": tokenizer}}},
    ], "router_settings": {"num_retries": 0}}


@pytest.fixture(scope="session")
def provider_gateway(fake_openai, fake_anthropic, fake_azure, fake_bedrock, fake_ollama,
                     fake_tgi, tmp_path_factory):
    """One real gateway process serving a deployment of every provider, each on its fake."""
    from tests.providers.test_tokens import _tiny_tokenizer
    from tests.support.gateway import clean_env, start_gateway

    tokenizer = _tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")
    fakes = {"openai": fake_openai, "anthropic": fake_anthropic, "azure": fake_azure,
             "bedrock": fake_bedrock, "ollama": fake_ollama, "tgi": fake_tgi}
    env = {**clean_env(), "GW_ANTHROPIC_KEY": ANTHROPIC_KEY, "GROQ_API_BASE": fake_openai.url,
           "GROQ_API_KEY": "gsk-gateway-key"}
    gateway = start_gateway(_provider_config(fakes, str(tokenizer)), env)
    yield gateway
    gateway.stop()
