"""`os.environ/NAME` anywhere in the file, the `environment_variables` block, and `Config.env`."""

from __future__ import annotations

import os

import pytest

from router.config import parse_config
from router.errors import ConfigError


def deployment(**params: object) -> dict[str, object]:
    return {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o", **params}}


def test_references_resolve_in_nested_mappings_and_lists() -> None:
    config = parse_config(
        {
            "model_list": [deployment(
                extra_headers={"X-Team": "os.environ/TEAM"},
                organization=["os.environ/ORG_A", "org-literal"],
                vertex_location="os.environ/REGION",
                routing={"regions": ["os.environ/REGION", {"deep": "os.environ/TEAM"}]},
            )],
            "router_settings": {"fallbacks": [{"chat": ["os.environ/FALLBACK"]}]},
        },
        environ={"TEAM": "blue", "ORG_A": "org-a", "REGION": "eu", "FALLBACK": "chat-mini"},
    )
    params = config.model_list[0].litellm_params
    assert params.extra_headers == {"X-Team": "blue"}
    assert params.organization == ["org-a", "org-literal"]
    extras = params.provider_params()
    assert extras["vertex_location"] == "eu"
    assert extras["routing"] == {"regions": ["eu", {"deep": "blue"}]}
    assert config.router_settings.fallbacks == [{"chat": ["chat-mini"]}]


def test_environment_variables_block_feeds_references_and_process_wins() -> None:
    config = parse_config(
        {
            "environment_variables": {"OPENAI_KEY": "from-file", "REDIS_PORT": 6390,
                                      "BASE": "http://file.example"},
            "model_list": [deployment(api_key="os.environ/OPENAI_KEY", api_base="os.environ/BASE")],
            "router_settings": {"redis_port": "os.environ/REDIS_PORT"},
        },
        environ={"BASE": "http://process.example"},
    )
    params = config.model_list[0].litellm_params
    assert params.api_key == "from-file"
    assert params.api_base == "http://process.example"
    assert config.router_settings.redis_port == 6390
    assert config.environment_variables == {"OPENAI_KEY": "from-file", "REDIS_PORT": "6390",
                                            "BASE": "http://file.example"}
    assert config.env["BASE"] == "http://process.example"
    assert config.env["OPENAI_KEY"] == "from-file"


def test_environment_variables_may_reference_the_process() -> None:
    config = parse_config(
        {"environment_variables": {"ALIAS_KEY": "os.environ/REAL_KEY", "GONE": "os.environ/NOPE"},
         "model_list": [deployment(api_key="os.environ/ALIAS_KEY")]},
        environ={"REAL_KEY": "sk-real"},
    )
    assert config.model_list[0].litellm_params.api_key == "sk-real"
    assert "GONE" not in config.environment_variables
    assert "GONE" not in config.env


def test_config_env_is_read_only_and_environ_is_not_touched() -> None:
    environ = {"PROCESS_ONLY": "1"}
    config = parse_config({"environment_variables": {"FILE_ONLY": "2"}}, environ=environ)
    assert environ == {"PROCESS_ONLY": "1"}
    assert dict(config.env) == {"PROCESS_ONLY": "1", "FILE_ONLY": "2"}
    with pytest.raises(TypeError):
        config.env["X"] = "y"  # type: ignore[index]
    assert "FILE_ONLY" not in os.environ


def test_env_defaults_to_the_process_environment() -> None:
    key = next(iter(os.environ))
    assert parse_config({}).env[key] == os.environ[key]


def test_missing_required_variable_names_path_and_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"model_list": [deployment(), {"model_name": "os.environ/NAME_VAR",
                                          "litellm_params": {"model": "os.environ/MODEL_VAR"}}]},
            environ={},
        )
    lines = str(caught.value).splitlines()[1:]
    assert lines == [
        "model_list[1].model_name: environment variable NAME_VAR is not set",
        "model_list[1].litellm_params.model: environment variable MODEL_VAR is not set",
    ]


def test_missing_optional_variable_becomes_none() -> None:
    config = parse_config(
        {"model_list": [deployment(api_key="os.environ/AZURE_API_KEY",
                                   api_base="os.environ/AZURE_API_BASE",
                                   vertex_project="os.environ/VERTEX_PROJECT")],
         "router_settings": {"redis_password": "os.environ/REDIS_PASSWORD"}},
        environ={},
    )
    params = config.model_list[0].litellm_params
    assert params.api_key is None
    assert params.api_base is None
    assert "vertex_project" not in params.provider_params()
    assert config.router_settings.redis_password is None


def test_unset_master_key_and_redis_host_are_errors_not_silence() -> None:
    # Dropping these would open the gateway or split its state per instance.
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
             "router_settings": {"redis_host": "os.environ/REDIS_HOST"}},
            environ={},
        )
    message = str(caught.value)
    assert "general_settings.master_key: environment variable LITELLM_MASTER_KEY is not set" in (
        message)
    assert "router_settings.redis_host: environment variable REDIS_HOST is not set" in message


def test_missing_variable_inside_a_list_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"organization\[1\]: environment variable ORG_B is not"):
        parse_config({"model_list": [deployment(organization=["org-a", "os.environ/ORG_B"])]},
                     environ={})


def test_error_never_shows_the_resolved_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"model_list": [deployment(api_key="os.environ/KEY", rpm="os.environ/KEY")]},
                     environ={"KEY": "sk-very-secret-value"})
    assert "model_list[0].litellm_params.rpm: must be a positive integer" in str(caught.value)
    assert "sk-very-secret-value" not in str(caught.value)
