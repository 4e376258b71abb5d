"""Which adapter serves a `litellm_params.model` string, and where hosted providers live.

`split_model("azure/gpt-4o")` → ("azure", "gpt-4o"); a model without a known prefix is an
OpenAI model ("gpt-4o-mini", or any name served by an OpenAI-compatible `api_base`).
Adapters are imported on first use so that a gateway serving only OpenAI never imports
botocore or any other provider's dependencies.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.providers.base import Provider

__all__ = [
    "HOSTED_OPENAI_COMPATIBLE",
    "HostedProvider",
    "adapter_key",
    "get_provider",
    "hosted_base",
    "hosted_key",
    "known_prefixes",
    "needs_api_base",
    "split_model",
]


@dataclass(frozen=True, slots=True)
class HostedProvider:
    """An OpenAI-compatible service users name by prefix, without an `api_base`."""

    api_base: str | None
    """Default base URL; None when the user must give one (self-hosted servers)."""
    key_env: str | tuple[str, ...]
    """Environment variable(s) holding the key, first one set wins."""
    base_env: str | tuple[str, ...] = ()
    """Environment variable(s) that override the default base URL."""


# prefix → default base URL and the environment variables holding its key / base URL.
HOSTED_OPENAI_COMPATIBLE: dict[str, HostedProvider] = {
    "openai": HostedProvider(
        "https://api.openai.com/v1", "OPENAI_API_KEY", ("OPENAI_API_BASE", "OPENAI_BASE_URL")
    ),
    "custom_openai": HostedProvider(None, "OPENAI_API_KEY"),
    "text-completion-openai": HostedProvider(
        "https://api.openai.com/v1", "OPENAI_API_KEY", ("OPENAI_API_BASE", "OPENAI_BASE_URL")
    ),
    "hosted_vllm": HostedProvider(None, "HOSTED_VLLM_API_KEY", "HOSTED_VLLM_API_BASE"),
    "azure_ai": HostedProvider(None, "AZURE_AI_API_KEY", "AZURE_AI_API_BASE"),
    "lm_studio": HostedProvider(None, "LM_STUDIO_API_KEY", "LM_STUDIO_API_BASE"),
    "xinference": HostedProvider(None, "XINFERENCE_API_KEY", "XINFERENCE_API_BASE"),
    "deepseek": HostedProvider("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
                               "DEEPSEEK_API_BASE"),
    "groq": HostedProvider("https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_API_BASE"),
    "together_ai": HostedProvider(
        "https://api.together.xyz/v1", ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY",
                                        "TOGETHER_AI_TOKEN")
    ),
    "mistral": HostedProvider("https://api.mistral.ai/v1", "MISTRAL_API_KEY", "MISTRAL_API_BASE"),
    "codestral": HostedProvider("https://codestral.mistral.ai/v1", "CODESTRAL_API_KEY"),
    "fireworks_ai": HostedProvider(
        "https://api.fireworks.ai/inference/v1", ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY")
    ),
    "openrouter": HostedProvider("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
                                 "OPENROUTER_API_BASE"),
    "perplexity": HostedProvider("https://api.perplexity.ai",
                                 ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY")),
    "xai": HostedProvider("https://api.x.ai/v1", "XAI_API_KEY", "XAI_API_BASE"),
    "deepinfra": HostedProvider("https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
    "anyscale": HostedProvider("https://api.endpoints.anyscale.com/v1", "ANYSCALE_API_KEY"),
    "cerebras": HostedProvider("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "sambanova": HostedProvider("https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
    "nvidia_nim": HostedProvider("https://integrate.api.nvidia.com/v1", "NVIDIA_NIM_API_KEY",
                                 "NVIDIA_NIM_API_BASE"),
    "github": HostedProvider("https://models.inference.ai.azure.com", "GITHUB_API_KEY"),
    "moonshot": HostedProvider("https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
    "dashscope": HostedProvider("https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
                                "DASHSCOPE_API_KEY"),
    "friendliai": HostedProvider("https://api.friendli.ai/serverless/v1",
                                 ("FRIENDLIAI_API_KEY", "FRIENDLI_TOKEN")),
    # Google's OpenAI-compatible endpoint: chat, streaming and embeddings in OpenAI's format.
    "gemini": HostedProvider("https://generativelanguage.googleapis.com/v1beta/openai",
                             ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
}

# prefix → "module:ClassName" under router.providers. The OpenAI-compatible ones share one.
_ADAPTERS: dict[str, str] = {
    "openai": "openai:OpenAIProvider",
    "mock": "mock:MockProvider",
    "azure": "azure:AzureProvider",
    "azure_text": "azure:AzureProvider",
    "bedrock": "bedrock:BedrockProvider",
    "anthropic": "anthropic:AnthropicProvider",
    "ollama": "ollama:OllamaProvider",
    "ollama_chat": "ollama:OllamaProvider",
    "huggingface": "tgi:TGIProvider",
    "vertex_ai": "vertex:VertexProvider",
    "cohere": "cohere:CohereProvider",
    "cohere_chat": "cohere:CohereProvider",
    "sagemaker": "sagemaker:SageMakerProvider",
    "cloudflare": "cloudflare:CloudflareProvider",
}

_instances: dict[str, Provider] = {}


def known_prefixes() -> frozenset[str]:
    return frozenset(_ADAPTERS) | frozenset(HOSTED_OPENAI_COMPATIBLE)


def split_model(model: str) -> tuple[str, str]:
    """Split a `litellm_params.model` into (provider, upstream model id)."""
    prefix, sep, rest = model.partition("/")
    if sep and prefix in known_prefixes():
        return prefix, rest
    return "openai", model


def adapter_key(provider: str) -> str:
    """The adapter that serves `provider` (hosted OpenAI-compatible prefixes share one)."""
    if provider in _ADAPTERS:
        return _ADAPTERS[provider]
    if provider in HOSTED_OPENAI_COMPATIBLE:
        return _ADAPTERS["openai"]
    raise KeyError(provider)


def get_provider(provider: str) -> Provider:
    """The process-wide adapter instance for `provider`, imported on first use."""
    target = adapter_key(provider)
    instance = _instances.get(target)
    if instance is None:
        module_name, _, class_name = target.partition(":")
        module = importlib.import_module(f"router.providers.{module_name}")
        instance = getattr(module, class_name)()
        _instances[target] = instance
    return instance


def _first_env(names: str | tuple[str, ...], env: Mapping[str, str]) -> str | None:
    for name in (names,) if isinstance(names, str) else names:
        value = env.get(name)
        if value:
            return value
    return None


def hosted_base(provider: str, env: Mapping[str, str] = os.environ) -> str | None:
    """The base URL of a hosted provider: its override variable, else its default."""
    hosted = HOSTED_OPENAI_COMPATIBLE.get(provider)
    if hosted is None:
        return None
    return _first_env(hosted.base_env, env) or hosted.api_base


def needs_api_base(provider: str, env: Mapping[str, str] = os.environ) -> bool:
    """Whether a hosted-style prefix has no URL unless the deployment gives one."""
    return provider in HOSTED_OPENAI_COMPATIBLE and hosted_base(provider, env) is None


def hosted_key(provider: str, env: Mapping[str, str] = os.environ) -> str | None:
    """The key of a hosted provider from its environment variable(s)."""
    hosted = HOSTED_OPENAI_COMPATIBLE.get(provider)
    return _first_env(hosted.key_env, env) if hosted is not None else None
