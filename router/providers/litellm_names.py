"""The provider names LiteLLM reads as the prefix of `litellm_params.model` (`vertex_ai/gemini`).

Laneway serves only some of them (`router.providers.catalog.known_prefixes()`); for any other
name on this list, a config written for LiteLLM means a provider laneway cannot reach, and the
config check says so instead of sending the call to OpenAI's URL. A prefix that is on neither
list (`meta-llama/Llama-3-8B`) is part of a model id, as an OpenAI-compatible server names it.

Collected from LiteLLM's documented providers; a name missing here only means that such a
model is treated as an OpenAI-compatible model id, as before.
"""

from __future__ import annotations

__all__ = ["LITELLM_PROVIDERS"]

LITELLM_PROVIDERS: frozenset[str] = frozenset(
    {
        # OpenAI and OpenAI-compatible
        "openai", "openai_like", "custom_openai", "text-completion-openai", "aiohttp_openai",
        "custom", "litellm_proxy", "hosted_vllm", "vllm", "lm_studio", "llamafile",
        "xinference", "oobabooga", "infinity", "triton", "petals",
        # Cloud platforms
        "azure", "azure_text", "azure_ai", "bedrock", "sagemaker", "sagemaker_chat",
        "vertex_ai", "vertex_ai_beta", "gemini", "palm", "watsonx", "watsonx_text",
        "cloudflare", "databricks", "snowflake", "oci", "heroku", "gradient_ai", "datarobot",
        "ovhcloud", "vercel_ai_gateway", "github", "github_copilot", "nvidia_nim",
        "lambda_ai", "nebius", "nscale",
        # Model vendors and hosted inference
        "anthropic", "anthropic_text", "cohere", "cohere_chat", "mistral", "codestral",
        "text-completion-codestral", "ai21", "ai21_chat", "aleph_alpha", "deepseek", "xai",
        "groq", "together_ai", "fireworks_ai", "openrouter", "perplexity", "deepinfra",
        "anyscale", "cerebras", "sambanova", "friendliai", "replicate", "huggingface",
        "baseten", "predibase", "clarifai", "nlp_cloud", "maritalk", "volcengine",
        "dashscope", "moonshot", "meta_llama", "novita", "featherless_ai", "hyperbolic",
        "galadriel", "empower", "v0", "morph", "wandb", "bytez", "ollama", "ollama_chat",
        # Embeddings, rerank, audio and images
        "voyage", "jina_ai", "deepgram", "assemblyai", "elevenlabs", "topaz", "recraft",
        # Prompt management
        "langfuse", "humanloop",
    }
)
