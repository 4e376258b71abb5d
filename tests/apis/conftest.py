"""A real gateway in front of three fakes speaking their real wire formats: OpenAI (chat and
the Responses API), Anthropic's Messages API and Bedrock (Converse, SigV4-signed).

Model groups: `oai` (OpenAI: Responses passed through), `compat` (an OpenAI-compatible server,
`hosted_vllm/`: Responses translated to chat), `claude` (Anthropic: Messages passed through,
Responses translated), `bedrock` (Converse: both translated)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_openai import FakeUpstream, start_server
from tests.support.gateway import Gateway, start_gateway

KEY = "sk-apis-master-0123456789"
ANTHROPIC_KEY = "sk-ant-apis-0123456789"
BEDROCK_SECRET = "apis-bedrock-secret-0123456789"


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_anthropic")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_bedrock() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_bedrock",
                          env={"FAKE_AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET})
    yield server
    server.stop()


def model_list(openai: FakeUpstream, anthropic: FakeUpstream, bedrock: FakeUpstream,
               suffix: str = "") -> list[dict[str, Any]]:
    return [
        {"model_name": "oai", "litellm_params": {
            "model": f"openai/gpt-fake{suffix}", "api_base": openai.url, "api_key": "sk-up-1"},
         "model_info": {"native_responses": True}},  # the fake plays OpenAI's own API
        {"model_name": "compat", "litellm_params": {
            "model": f"hosted_vllm/compat-fake{suffix}", "api_base": openai.url,
            "api_key": "sk-up-2"}},
        {"model_name": "claude", "litellm_params": {
            "model": f"anthropic/claude-fake{suffix}", "api_base": anthropic.base,
            "api_key": ANTHROPIC_KEY}},
        {"model_name": "bedrock", "litellm_params": {
            "model": f"bedrock/anthropic.claude-3-haiku-20240307-v1:0{suffix}",
            "aws_access_key_id": "AKIDAPISEXAMPLE0001", "aws_secret_access_key": BEDROCK_SECRET,
            "aws_region_name": "eu-west-1", "aws_bedrock_runtime_endpoint": bedrock.base}},
        # Streams that break after their first events.
        {"model_name": "claude-breaks", "litellm_params": {
            "model": "anthropic/claude-fake+overloaded_mid_stream=1",
            "api_base": anthropic.base, "api_key": ANTHROPIC_KEY}},
        {"model_name": "compat-breaks", "litellm_params": {
            "model": "hosted_vllm/compat-fake+cut_after=3+reply=one two three four five",
            "api_base": openai.url, "api_key": "x"}},
    ]


@pytest.fixture(scope="module")
def gw(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream,
       fake_bedrock: FakeUpstream) -> Iterator[Gateway]:
    config = {"model_list": model_list(fake_openai, fake_anthropic, fake_bedrock),
              "general_settings": {"master_key": KEY}}
    gateway = start_gateway(config, key=KEY)
    yield gateway
    gateway.stop()


def anthropic_client(gw: Gateway, **kw: Any) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=gw.url, api_key=gw.key or "unused", max_retries=0,
                               **kw)


UPSTREAMS = ("oai", "compat", "claude", "bedrock")
