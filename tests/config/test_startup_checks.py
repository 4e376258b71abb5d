"""Checks that stop a config at load time: providers laneway does not serve, missing optional
packages, unusable Redis addresses; and the one warning per unsupported callback."""

from __future__ import annotations

import logging
import subprocess
import textwrap
from typing import Any

import pytest

from router.config import parse_config
from router.config.serving import require_models
from router.errors import ConfigError
from router.groups import build_deployments
from router.providers.catalog import known_prefixes
from tests.support.procs import PYTHON, REPO


def entry(model: str, **params: Any) -> dict[str, Any]:
    info = params.pop("model_info", None)
    out: dict[str, Any] = {"model_name": "m", "litellm_params": {"model": model, **params}}
    if info is not None:
        out["model_info"] = info
    return out


def problems(document: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, environ=environ or {})
    return str(caught.value).splitlines()[1:]


# --- providers --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["watsonx", "replicate", "petals"])
def test_a_litellm_provider_laneway_does_not_serve_is_an_error(prefix: str) -> None:
    lines = problems({"model_list": [entry("openai/gpt-4o"), entry(f"{prefix}/some-model",
                                                                   api_key="sk-for-them")]})
    assert len(lines) == 1
    assert lines[0].startswith(f"model_list[1].litellm_params.model: provider '{prefix}' is not "
                               "served by laneway (laneway serves: ")
    for served in known_prefixes():
        assert served in lines[0]
    assert f"write openai/{prefix}/some-model" in lines[0]


def test_model_ids_with_a_slash_and_wildcards_keep_working() -> None:
    config = parse_config({"model_list": [
        entry("meta-llama/Llama-3-8B", api_base="http://vllm.internal:8000/v1"),
        entry("hosted_vllm/Qwen/Qwen2-7B", api_base="http://vllm.internal:8000/v1"),
        entry("openai/vertex_ai/looks-like-a-provider", api_base="http://vllm.internal/v1"),
        {"model_name": "*", "litellm_params": {"model": "*"}},
        {"model_name": "openai/*", "litellm_params": {"model": "openai/*"}},
        {"model_name": "team/*", "litellm_params": {"model": "team/*",
                                                    "api_base": "http://vllm.internal/v1"}},
        # A mock answers locally, whatever provider its model names.
        entry("vertex_ai/gemini-pro", mock_response="hi"),
    ]}, environ={})
    served = {(d.provider, d.model) for d in build_deployments(config)}
    assert ("openai", "meta-llama/Llama-3-8B") in served
    assert ("hosted_vllm", "Qwen/Qwen2-7B") in served
    assert ("openai", "vertex_ai/looks-like-a-provider") in served


# --- optional packages ------------------------------------------------------------------------

# Makes `package` (and its submodules) impossible to find or import, as if not installed.
_HIDE = textwrap.dedent("""
    import sys

    class Hide:
        def __init__(self, name):
            self.name = name

        def find_spec(self, fullname, path=None, target=None):
            if fullname == self.name or fullname.startswith(self.name + "."):
                raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
            return None

    sys.meta_path.insert(0, Hide(sys.argv[1]))
""")


def load_without(package: str, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    script = _HIDE + textwrap.dedent(f"""
        from router.config import parse_config
        from router.errors import ConfigError
        try:
            parse_config({document!r}, environ={{}})
        except ConfigError as exc:
            print(exc)
            sys.exit(2)
        print("loaded", sorted(m for m in ("botocore", "tokenizers") if m in sys.modules))
    """)
    return subprocess.run([PYTHON, "-c", script, package], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


BEDROCK = {"model_list": [entry("openai/gpt-4o"),
                          entry("bedrock/anthropic.claude-3-haiku", aws_region_name="us-east-1")]}
TOKENIZER = {"model_list": [entry("openai/gpt-4o", model_info={
    "custom_tokenizer": {"identifier": "org/tokenizer"}})]}


def test_bedrock_without_botocore_names_the_deployment_and_the_extra() -> None:
    result = load_without("botocore", BEDROCK)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "model_list[1].litellm_params.model: bedrock/anthropic.claude-3-haiku signs its " \
           "requests with botocore, which is not installed: pip install 'laneway[aws]'" \
           in result.stdout
    # With botocore installed the same config loads, and loading it imports nothing.
    result = load_without("nothing-hidden", BEDROCK)
    assert result.stdout.strip() == "loaded []", result.stderr


def test_bedrock_with_an_api_key_needs_no_botocore() -> None:
    document = {"model_list": [entry("bedrock/anthropic.claude-3-haiku", api_key="bedrock-key")]}
    result = load_without("botocore", document)
    assert result.stdout.strip() == "loaded []", result.stdout + result.stderr


def test_custom_tokenizer_without_tokenizers_names_the_deployment_and_the_extra() -> None:
    result = load_without("tokenizers", TOKENIZER)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "model_list[0].model_info.custom_tokenizer: needs the tokenizers package, which is " \
           "not installed: pip install 'laneway[tokenizers]'" in result.stdout
    assert load_without("nothing-hidden", TOKENIZER).stdout.strip() == "loaded []"


# --- Redis ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "environ", "expected"), [
    ({"redis_url": "http://cache.internal:6379"}, {},
     "router_settings.redis_url: must start with redis:// or rediss:// (TLS), not 'http'"),
    ({"redis_url": "cache.internal:6379"}, {},
     "router_settings.redis_url: must be a URL such as redis://host:6379 (rediss:// for TLS)"),
    ({"redis_url": "redis://:pw-secret-1@cache.internal:port"}, {},
     "router_settings.redis_url: has a port that is not a number from 1 to 65535"),
    ({"redis_url": "redis://cache.internal:99999"}, {},
     "router_settings.redis_url: has a port that is not a number from 1 to 65535"),
    ({"redis_url": "redis://[cache.internal:6379"}, {},
     "router_settings.redis_url: has something that cannot be read as a URL"),
    ({"redis_url": "redis://cache.internal:6379/zero"}, {},
     "router_settings.redis_url: the database (after the last /) must be a number"),
    ({}, {"REDIS_URL": "redis://:pw-secret-1@cache.internal:63a9"},
     "REDIS_URL: has a port that is not a number from 1 to 65535"),
    ({}, {"REDIS_URL": "memcached://cache.internal"},
     "REDIS_URL: must start with redis:// or rediss:// (TLS), not 'memcached'"),
    ({"redis_host": "redis://cache.internal"}, {},
     "router_settings.redis_host: must be a host name or address, not a URL"),
    ({"redis_host": "cache.internal:6380"}, {},
     "router_settings.redis_host: must be a host name or address without a port or path"),
    ({}, {"REDIS_HOST": "::1"},
     "REDIS_HOST: must be a host name or address without a port or path"),
    ({}, {"REDIS_HOST": "cache.internal", "REDIS_PORT": "six"},
     "REDIS_PORT: must be a port number (1-65535)"),
    ({"redis_host": "cache.internal", "redis_port": 70000}, {},
     "router_settings.redis_port: must be a port number (1-65535)"),
])
def test_an_unusable_redis_address_names_the_setting(
        settings: dict[str, Any], environ: dict[str, str], expected: str) -> None:
    lines = problems({"model_list": [entry("openai/gpt-4o")], "router_settings": settings},
                     environ)
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert "pw-secret-1" not in lines[0]


@pytest.mark.parametrize(("settings", "environ"), [
    ({"redis_url": "rediss://user:pw@cache.internal:6380/2?ssl_check_hostname=false"}, {}),
    ({"redis_url": "redis://cache.internal"}, {"REDIS_URL": "ignored, the config wins"}),
    ({}, {"REDIS_URL": "redis://127.0.0.1:6379/0"}),
    ({"redis_host": "cache.internal", "redis_port": "6380"}, {}),
    ({}, {"REDIS_HOST": "[::1]", "REDIS_PORT": "6379"}),
    ({}, {"REDIS_HOST": "10.0.0.5"}),
])
def test_usable_redis_addresses_load(settings: dict[str, Any], environ: dict[str, str]) -> None:
    parse_config({"model_list": [entry("openai/gpt-4o")], "router_settings": settings},
                 environ=environ)


# --- callbacks --------------------------------------------------------------------------------


def test_an_unsupported_callback_is_one_warning_with_its_path(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="laneway"):
        config = parse_config({"model_list": [entry("openai/gpt-4o")], "litellm_settings": {
            "success_callback": ["langfuse", "prometheus", "sentry"],
            "failure_callback": ["sentry", "langfuse"],
            "callbacks": ["otel"],
        }}, environ={})
    assert config.warnings == [
        "litellm_settings.success_callback[2]: callback 'sentry' is not supported by laneway and "
        "is ignored (supported: langfuse, webhook, generic_api, prometheus); also listed at "
        "litellm_settings.failure_callback[0]",
        "litellm_settings.callbacks[0]: callback 'otel' is not supported by laneway and is "
        "ignored (supported: langfuse, webhook, generic_api, prometheus)",
    ]
    assert caplog.text.count("callback 'sentry'") == 1
    assert caplog.text.count("callback 'otel'") == 1


# --- nothing to serve -------------------------------------------------------------------------


def test_no_models_is_explained() -> None:
    config = parse_config({"model_list": []}, environ={})
    with pytest.raises(ConfigError, match="config <config> serves no models: model_list is "
                                          "empty or missing"):
        require_models(config, build_deployments(config))


def test_every_model_filtered_out_by_the_environment_is_explained() -> None:
    document = {"model_list": [entry("openai/gpt-4o", model_info={
        "supported_environments": ["staging", "development"]})]}
    config = parse_config(document, environ={"LITELLM_ENVIRONMENT": "production"})
    with pytest.raises(ConfigError) as caught:
        require_models(config, build_deployments(config))
    assert str(caught.value) == (
        "config <config> serves no models in environment 'production' (LITELLM_ENVIRONMENT): "
        "every model_list entry's model_info.supported_environments leaves it out (they list: "
        "development, staging)")
    staging = parse_config(document, environ={"LITELLM_ENVIRONMENT": "staging"})
    require_models(staging, build_deployments(staging))
