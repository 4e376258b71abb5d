"""Laneway's configuration: LiteLLM proxy `config.yaml` files, parsed once into frozen models.

    config = load_config()                      # CONFIG_FILE_PATH, LANEWAY_CONFIG or a bucket
    config = load_config("s3://bucket/key.yaml")
    config = parse_config(yaml_document, environ={"OPENAI_API_KEY": "..."})

Every problem is a `router.errors.ConfigError` naming the YAML path; unknown keys are warnings
(`config.warnings`). Environment variables for this config are read from `config.env`.
"""

from router.config.load import load_config, parse_config
from router.config.schema import (
    REQUEST_PARAMS,
    Config,
    Credential,
    CustomTokenizer,
    LitellmParams,
    ModelEntry,
    ModelInfo,
)
from router.config.settings import (
    ROUTING_STRATEGIES,
    GeneralSettings,
    LitellmSettings,
    RouterSettings,
)

__all__ = [
    "REQUEST_PARAMS",
    "ROUTING_STRATEGIES",
    "Config",
    "Credential",
    "CustomTokenizer",
    "GeneralSettings",
    "LitellmParams",
    "LitellmSettings",
    "ModelEntry",
    "ModelInfo",
    "RouterSettings",
    "load_config",
    "parse_config",
]
