"""Every config example from the LiteLLM docs seeds loads, with the values a user wrote."""

from __future__ import annotations

import logging

import pytest

from router.config import load_config
from tests.config.conftest import FIXTURES


def load(name: str, **env: str):
    return load_config(str(FIXTURES / name), environ=env)


def test_quickstart() -> None:
    config = load("quickstart.yaml", AZURE_API_KEY_EU="eu-key", AZURE_API_KEY_CA="ca-key")
    names = [entry.model_name for entry in config.model_list]
    assert names == ["gpt-3.5-turbo", "bedrock-claude-v1", "gpt-3.5-turbo", "anthropic-claude",
                     "vllm-models", "*"]
    eu, _, ca, claude, vllm, wildcard = config.model_list
    assert (eu.litellm_params.api_key, eu.litellm_params.rpm) == ("eu-key", 6)
    assert ca.litellm_params.api_key == "ca-key"
    assert ca.litellm_params.api_base == "https://my-endpoint-canada-berri992.openai.azure.com/"
    assert claude.litellm_params.aws_region_name == "us-east-1"
    assert vllm.litellm_params.api_key == "none"
    assert vllm.litellm_params.rpm == 1440
    assert vllm.model_info.version == 2
    assert wildcard.litellm_params.model == "*"
    assert config.litellm_settings.drop_params is True
    assert config.litellm_settings.success_callback == ["langfuse"]
    assert config.general_settings.master_key == "sk-1234"
    assert config.general_settings.alerting == ["slack"]
    assert config.warnings == []


def test_model_specific_params() -> None:
    config = load("model_params.yaml")
    team1, team2, org, mistral = (entry.litellm_params for entry in config.model_list)
    assert team1.api_version == "2023-05-15"
    assert team1.azure_ad_token == "eyJ0eXAiOiJ"
    assert team1.request_defaults() == {"seed": 12, "max_tokens": 20}
    assert team2.request_defaults() == {"temperature": 0.2}
    assert team2.api_key == "sk-123"
    assert org.extra_headers == {"AI-Resource Group": "ishaan-resource"}
    assert org.organization == "org-ikDc4ex8NB"
    assert mistral.model == "ollama/mistral"
    assert mistral.api_base == "your_ollama_api_base"


def test_embedding_deployments_share_a_name() -> None:
    config = load("embedding_bedrock.yaml")
    assert {entry.model_name for entry in config.model_list} == {"bedrock-cohere"}
    regions = [entry.litellm_params.aws_region_name for entry in config.model_list]
    assert regions == ["us-west-2", "us-east-2", "us-east-1"]


def test_openai_organizations_list() -> None:
    config = load("openai_organizations.yaml", OPENAI_API_KEY="sk-openai")
    (entry,) = config.model_list
    assert entry.model_name == "*"
    assert entry.litellm_params.model == "openai/*"
    assert entry.litellm_params.organization == ["org-1", "org-2", "org-3"]
    assert entry.litellm_params.api_key == "sk-openai"


def test_load_balancing() -> None:
    config = load("load_balancing.yaml")
    zephyr = [e for e in config.model_list if e.model_name == "zephyr-beta"]
    assert [(e.litellm_params.rpm, e.litellm_params.tpm) for e in zephyr] == [
        (60, 1000), (600, None), (60000, None)]
    settings = config.litellm_settings
    assert (settings.num_retries, settings.request_timeout, settings.allowed_fails) == (3, 10, 3)
    assert settings.fallbacks == [{"zephyr-beta": ["gpt-3.5-turbo"]}]
    assert settings.context_window_fallbacks == [
        {"zephyr-beta": ["gpt-3.5-turbo-16k"]}, {"gpt-3.5-turbo": ["gpt-3.5-turbo-16k"]}]
    router = config.router_settings
    assert router.routing_strategy == "simple-shuffle"
    assert router.model_group_alias == {"gpt-4": "gpt-3.5-turbo"}
    assert (router.num_retries, router.timeout, router.redis_port) == (2, 30.0, 1992)
    assert router.redis_host == "<your redis host>"


def test_env_reference() -> None:
    config = load("env_reference.yaml", AZURE_NORTH_AMERICA_API_KEY="na-key")
    assert config.model_list[0].litellm_params.api_key == "na-key"


def test_credentials_fill_in_the_deployment() -> None:
    config = load("credentials.yaml", AZURE_API_KEY="azure-key",
                  AZURE_API_BASE="https://eu.example.azure.com/")
    params = config.model_list[0].litellm_params
    assert params.api_key == "azure-key"
    assert params.api_base == "https://eu.example.azure.com/"
    assert params.api_version == "2023-05-15"
    credential = config.credential_list[0]
    assert credential.credential_name == "default_azure_credential"
    assert credential.credential_info == {"description": "Production credentials for EU region"}


def test_supported_environments() -> None:
    config = load("supported_environments.yaml", OPENAI_API_KEY="sk-openai")
    assert [e.model_info.supported_environments for e in config.model_list] == [
        ["development", "production", "staging"], ["production", "staging"], ["production"]]


def test_prompt_template() -> None:
    params = load("prompt_template.yaml").model_list[0].litellm_params
    assert params.initial_prompt_value == "\n"
    assert params.final_prompt_value == "\n"
    assert (params.bos_token, params.eos_token) == (" ", " ")
    assert params.roles is not None
    assert params.roles["system"] == {"pre_message": "<|im_start|>system\n",
                                      "post_message": "<|im_end|>"}
    assert set(params.roles) == {"system", "assistant", "user"}
    assert params.request_defaults() == {"max_tokens": 4096}


def test_custom_tokenizer() -> None:
    config = load("custom_tokenizer.yaml", OPENAI_API_KEY="sk-openai", HUGGINGFACE_API_KEY="hf-1")
    info = config.model_list[0].model_info
    assert info.access_groups == ["restricted-models"]
    assert info.custom_tokenizer is not None
    assert info.custom_tokenizer.identifier == "deepseek-ai/DeepSeek-V3-Base"
    assert info.custom_tokenizer.revision == "main"
    assert info.custom_tokenizer.auth_token == "hf-1"


def test_database_settings_are_accepted_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="laneway.config"):
        config = load("database_settings.yaml")
    assert config.model_list == []
    assert config.warnings == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "general_settings.database_connection_pool_limit" in caplog.text


def test_config_file_path_env_var() -> None:
    path = FIXTURES / "config_file_path.yaml"
    config = load_config(environ={"CONFIG_FILE_PATH": str(path), "OPENAI_API_KEY": "sk-openai"})
    assert config.model_list[0].model_name == "gpt-3.5-turbo"
    assert config.model_list[0].litellm_params.api_key == "sk-openai"


def test_request_prioritization_proxy_config() -> None:
    config = load("request_prioritization.yaml", REDIS_HOST="redis.internal",
                  REDIS_PASSWORD="hunter2", REDIS_PORT="6380")
    params = config.model_list[0].litellm_params
    assert params.mock_response == "hello world!"
    assert params.api_key == "my-good-key"
    assert config.litellm_settings.request_timeout == 600
    router = config.router_settings
    assert (router.redis_host, router.redis_password, router.redis_port) == (
        "redis.internal", "hunter2", 6380)

