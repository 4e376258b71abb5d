"""Checks on each `model_list` entry that need more than its own values: is its provider one
laneway serves, and is the optional package it needs installed?

Run once when the config is parsed, so a deployment that could never be served stops the start
with its YAML path instead of failing (or going to the wrong URL) at its first request.
Packages are looked up with `importlib.util.find_spec`, which finds without importing: botocore
alone costs a few hundred milliseconds of cold start.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.providers.catalog import known_prefixes, needs_api_base, split_model
from router.providers.litellm_names import LITELLM_PROVIDERS

if TYPE_CHECKING:
    from router.config.schema import ModelEntry

__all__ = ["deployment_problems"]


def deployment_problems(models: list[ModelEntry], env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    served = known_prefixes()
    for index, entry in enumerate(models):
        where = f"model_list[{index}]"
        params = entry.litellm_params
        mocked = params.mock_response is not None  # answered locally, whatever the prefix
        prefix, sep, _ = params.model.partition("/")
        if sep and not mocked and prefix not in served and prefix in LITELLM_PROVIDERS:
            problems.append(
                f"{where}.litellm_params.model: provider '{prefix}' is not served by laneway "
                f"(laneway serves: {', '.join(sorted(served))}); for a model id that "
                f"only looks like a provider, served by an OpenAI-compatible api_base, write "
                f"openai/{params.model}")
        elif not mocked and split_model(params.model)[0] in ("bedrock", "sagemaker") and (
                _needs_botocore(entry, env) and not _installed("botocore")):
            problems.append(
                f"{where}.litellm_params.model: {params.model} signs its requests with botocore, "
                "which is not installed: pip install 'laneway[aws]' (or give a Bedrock deployment "
                "a Bedrock API key as api_key)")
        elif (not mocked and not params.api_base and not params.litellm_credential_name
              and needs_api_base(split_model(params.model)[0], env)):
            problems.append(
                f"{where}.litellm_params.api_base: {params.model} is a self-hosted server "
                "with no default URL: set api_base (the server's OpenAI-compatible /v1 URL)")
        if entry.model_info.custom_tokenizer is not None and not _installed("tokenizers"):
            problems.append(
                f"{where}.model_info.custom_tokenizer: needs the tokenizers package, which is "
                "not installed: pip install 'laneway[tokenizers]'")
    return problems


def _needs_botocore(entry: ModelEntry, env: Mapping[str, str]) -> bool:
    """Bedrock with a bearer API key (and no AWS keys) needs no request signing."""
    params = entry.litellm_params
    if params.aws_access_key_id or params.model.startswith("sagemaker/"):
        return True
    return not (params.api_key or env.get("AWS_BEARER_TOKEN_BEDROCK"))


@functools.cache
def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as missing
        return False
