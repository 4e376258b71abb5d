"""Invalid values, unknown keys and credentials: what a user sees when the file is wrong."""

from __future__ import annotations

import logging

import pydantic
import pytest

from router.config import ROUTING_STRATEGIES, parse_config
from router.errors import ConfigError


def deployment(name: str = "chat", **params: object) -> dict[str, object]:
    return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o", **params}}


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, environ={}, source="test.yaml")
    header, *lines = str(caught.value).splitlines()
    assert header.startswith("config test.yaml has ")
    return lines


def test_several_invalid_values_are_reported_together_by_path() -> None:
    lines = problems({
        "model_list": [
            deployment(),
            deployment(rpm=0),
            deployment(rpm="lots", tpm=-5, weight=0, timeout="soon", temperature="hot"),
            {"model_name": "no-params"},
        ],
        "router_settings": {"redis_port": "not-a-port", "num_retries": -1,
                            "max_queue_size": {"chat": -2}, "redis_fail_open": "maybe"},
        "litellm_settings": {"drop_params": "sometimes", "context_window_fallbacks": {"a": "b"}},
    })
    assert lines == [
        "model_list[1].litellm_params.rpm: must be a positive integer",
        "model_list[2].litellm_params.rpm: must be a positive integer",
        "model_list[2].litellm_params.tpm: must be a positive integer",
        "model_list[2].litellm_params.weight: must be a positive number",
        "model_list[2].litellm_params.timeout: must be a positive number",
        "model_list[2].litellm_params.temperature: must be a number",
        "model_list[3].litellm_params: is required",
        "router_settings.num_retries: must be an integer of 0 or more",
        "router_settings.redis_port: must be a port number (1-65535)",
        "router_settings.redis_fail_open: must be true or false",
        "router_settings.max_queue_size: must be an integer of -1 (unlimited) or more, or a "
        "mapping of `default`, a model group or `priority:<n>` to such an integer",
        "litellm_settings.drop_params: must be true or false",
        "litellm_settings.context_window_fallbacks: must be a list of mappings like "
        "{model-group: [fallback-group, ...]}",
    ]


def test_numbers_must_be_finite() -> None:
    lines = problems({"model_list": [deployment(timeout="nan", weight="inf")]})
    assert lines == ["model_list[0].litellm_params.weight: must be a positive number",
                     "model_list[0].litellm_params.timeout: must be a positive number"]


def test_model_group_alias_targets() -> None:
    alias = {"gpt-4": "chat", "hidden-gpt": {"model": "chat", "hidden": True}}
    config = parse_config({"router_settings": {"model_group_alias": alias}}, environ={})
    assert config.router_settings.model_group_alias == alias
    (line,) = problems({"router_settings": {"model_group_alias": {"gpt-4": {"hidden": True}}}})
    assert line.startswith("router_settings.model_group_alias: must be a mapping of alias to ")


def test_wrong_shapes_are_named_in_yaml_terms() -> None:
    lines = problems({"model_list": {"chat": "gpt-4o"}, "router_settings": ["simple-shuffle"]})
    assert lines == ["model_list: must be a list", "router_settings: must be a mapping"]


def test_unknown_routing_strategy_lists_the_valid_ones() -> None:
    (line,) = problems({"router_settings": {"routing_strategy": "cost-based-routing"}})
    assert line.startswith("router_settings.routing_strategy: unknown routing strategy "
                           "'cost-based-routing'; use one of: ")
    for name in ROUTING_STRATEGIES:
        assert name in line


def test_every_routing_strategy_is_accepted_and_default_is_simple_shuffle() -> None:
    assert parse_config({}, environ={}).router_settings.routing_strategy == "simple-shuffle"
    for name in ROUTING_STRATEGIES:
        config = parse_config({"router_settings": {"routing_strategy": name}}, environ={})
        assert config.router_settings.routing_strategy == name


def test_env_strings_are_coerced_to_the_field_type() -> None:
    config = parse_config({
        "model_list": [deployment(rpm="os.environ/RPM", timeout="os.environ/TIMEOUT", tpm="1e6")],
        "router_settings": {"redis_port": "6379", "redis_fail_open": "os.environ/FAIL_OPEN",
                            "max_queue_size": {"chat": "10"}},
    }, environ={"RPM": "120", "TIMEOUT": "2.5", "FAIL_OPEN": "True"})
    params = config.model_list[0].litellm_params
    assert (params.rpm, params.timeout, params.tpm) == (120, 2.5, 1_000_000)
    router = config.router_settings
    assert (router.redis_port, router.redis_fail_open, router.max_queue_size) == (
        6379, True, {"chat": 10})


def test_unknown_keys_are_warned_once_with_their_paths(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="laneway.config"):
        config = parse_config({
            "model_list": [{**deployment(), "model_inf": {}},
                           {**deployment(), "model_info": {"custom_tokenizer": {
                               "identifier": "x", "branch": "dev"}}}],
            "router_settings": {"routng_strategy": "least-busy", "cache_responses": True},
            "litellm_settings": {"telemetry": True},
            "extra_section": {},
        }, environ={})
    assert config.warnings == [
        "model_list[0].model_inf: unknown key, ignored (did you mean model_info?)",
        "model_list[1].model_info.custom_tokenizer.branch: unknown key, ignored",
        "router_settings.routng_strategy: unknown key, ignored (did you mean routing_strategy?)",
        "extra_section: unknown key, ignored",
    ]
    # The typo did not silently take effect.
    assert config.router_settings.routing_strategy == "simple-shuffle"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    for line in config.warnings:
        assert line in warnings[0].getMessage()
    infos = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert "router_settings.cache_responses" in infos
    assert "litellm_settings.telemetry" in infos


def test_provider_params_and_model_info_extras_are_kept_without_warning() -> None:
    config = parse_config({"model_list": [{
        **deployment(vertex_project="proj", api_key="sk-1", temperature=0.1, stop=["END"]),
        "model_info": {"id": 7, "description": "free text", "mode": "chat"},
    }]}, environ={})
    assert config.warnings == []
    params = config.model_list[0].litellm_params
    assert params.provider_params() == {"model": "openai/gpt-4o", "vertex_project": "proj",
                                        "api_key": "sk-1", "temperature": 0.1, "stop": ["END"]}
    assert params.request_defaults() == {"temperature": 0.1, "stop": ["END"]}
    info = config.model_list[0].model_info
    assert (info.id, info.mode, info.model_dump()["description"]) == ("7", "chat", "free text")


def test_credential_values_merge_and_the_deployment_wins() -> None:
    config = parse_config({
        "model_list": [deployment(litellm_credential_name="azure", api_base="https://mine/")],
        "credential_list": [{"credential_name": "azure", "credential_values": {
            "api_key": "os.environ/AZ_KEY", "api_base": "https://shared/", "rpm": 50}}],
    }, environ={"AZ_KEY": "az-secret"})
    params = config.model_list[0].litellm_params
    assert (params.api_key, params.api_base, params.rpm) == ("az-secret", "https://mine/", 50)
    assert params.litellm_credential_name == "azure"


def test_unknown_or_duplicate_credential_is_an_error() -> None:
    lines = problems({
        "model_list": [deployment(), deployment(litellm_credential_name="missing")],
        "credential_list": [{"credential_name": "a"}, {"credential_name": "a"}],
    })
    assert lines == [
        "credential_list[1].credential_name: duplicate credential 'a'",
        "model_list[1].litellm_params.litellm_credential_name: unknown credential 'missing' "
        "(credential_list has: a)",
    ]


def test_document_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping with sections"):
        parse_config(["model_list"], environ={})


def test_empty_sections_mean_defaults() -> None:
    config = parse_config({"model_list": None, "router_settings": None,
                           "general_settings": {"master_key": None}}, environ={})
    assert config.model_list == []
    assert config.router_settings.routing_strategy == "simple-shuffle"
    assert config.general_settings.master_key is None


def test_config_is_frozen_and_repr_hides_secrets() -> None:
    config = parse_config({
        "model_list": [deployment(api_key="sk-hidden-1", vertex_credentials="hidden-2")],
        "general_settings": {"master_key": "sk-hidden-3"},
        "router_settings": {"redis_url": "redis://:hidden-4@host:6379"},
    }, environ={"PROCESS_SECRET": "hidden-5"})
    with pytest.raises(pydantic.ValidationError):
        config.model_list[0].litellm_params.rpm = 5  # type: ignore[misc]
    text = repr(config)
    assert "openai/gpt-4o" in text
    for secret in ("hidden-1", "hidden-2", "hidden-3", "hidden-4", "hidden-5"):
        assert secret not in text
