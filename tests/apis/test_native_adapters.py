"""Which adapters speak a format natively, and where Azure's Responses API lives."""

from __future__ import annotations

import pytest

from router.dispatch import MESSAGES, RESPONSES
from router.providers.catalog import get_provider
from router.router import Router


def _deployment(params: dict[str, object], info: dict[str, object] | None = None
                ):  # type: ignore[no-untyped-def]
    entry = {"model_name": "m", "litellm_params": params, "model_info": info or {}}
    return Router(model_list=[entry]).deployments()[0]


@pytest.mark.parametrize(("params", "kind", "native"), [
    ({"model": "openai/gpt-4o", "api_key": "k"}, RESPONSES, True),
    ({"model": "openai/gpt-4o", "api_key": "k", "api_base": "https://api.openai.com/v1"},
     RESPONSES, True),
    # An OpenAI-compatible server behind `openai/` may not have the Responses API.
    ({"model": "gpt-4o", "api_key": "k", "api_base": "http://h/v1"}, RESPONSES, False),
    ({"model": "azure/dep", "api_key": "k", "api_base": "https://r.openai.azure.com"},
     RESPONSES, True),
    ({"model": "hosted_vllm/llama", "api_base": "http://h/v1"}, RESPONSES, False),
    ({"model": "groq/llama", "api_key": "k"}, RESPONSES, False),
    ({"model": "anthropic/claude", "api_key": "k"}, MESSAGES, True),
    ({"model": "anthropic/claude", "api_key": "k"}, RESPONSES, False),
    ({"model": "openai/gpt-4o", "api_key": "k"}, MESSAGES, False),
    ({"model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0"}, MESSAGES, True),
    ({"model": "bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0"}, MESSAGES, True),
    ({"model": "bedrock/meta.llama3-8b-instruct-v1:0"}, MESSAGES, False),
    ({"model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0"}, RESPONSES, False),
])
def test_who_speaks_what(params: dict[str, object], kind: str, native: bool) -> None:
    d = _deployment(params)
    speaks = getattr(get_provider(d.provider), "speaks", None)
    assert bool(speaks and speaks(d, kind)) is native


@pytest.mark.parametrize(("base", "native"), [("http://h/v1", True),
                                              ("https://api.openai.com/v1", False)])
def test_model_info_decides_for_a_deployment(base: str, native: bool) -> None:
    d = _deployment({"model": "openai/gpt-4o", "api_key": "k", "api_base": base},
                    {"native_responses": native})
    assert get_provider(d.provider).speaks(d, RESPONSES) is native  # type: ignore[attr-defined]


@pytest.mark.parametrize("base", [
    "https://r.openai.azure.com", "https://r.openai.azure.com/",
    "https://r.openai.azure.com/openai/v1", "https://r.openai.azure.com/openai/deployments/x"])
def test_azure_responses_use_the_v1_layout(base: str) -> None:
    d = _deployment({"model": "azure/dep", "api_key": "k", "api_base": base,
                     "api_version": "2024-10-21"})
    assert get_provider("azure").responses_url(d) == (  # type: ignore[attr-defined]
        "https://r.openai.azure.com/openai/v1/responses")
