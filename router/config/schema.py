"""The parsed config: deployments (`model_list`), credentials, and the whole `Config`.

Secret-bearing fields are left out of `repr()` so logging a model never prints a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, PrivateAttr

from router.config.fields import (
    AnyMap,
    Integer,
    NonNegativeInt,
    Number,
    PositiveInt,
    PositiveNumber,
    Section,
    Text,
    TextList,
    TextMap,
    TextOrInt,
    TextOrList,
)
from router.config.settings import GeneralSettings, LitellmSettings, RouterSettings
from router.config.tenants import TenantsSection

# OpenAI request parameters a deployment may set as defaults for every call it serves.
REQUEST_PARAMS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "response_format",
    "user",
    "logit_bias",
    "reasoning_effort",
)

_SECRET_NAME = re.compile(r"(?i)key|secret|token|password|credential")


class LitellmParams(Section):
    """How to call one deployment. Unlisted keys are provider-specific and kept as they are."""

    model_config = ConfigDict(extra="allow")

    model: Text
    api_base: Text | None = None
    api_key: Text | None = Field(default=None, repr=False)
    api_version: Text | None = None
    azure_ad_token: Text | None = Field(default=None, repr=False)
    organization: TextOrList | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    max_parallel_requests: PositiveInt | None = None
    weight: PositiveNumber | None = None
    timeout: PositiveNumber | None = None
    stream_timeout: PositiveNumber | None = None
    max_retries: NonNegativeInt | None = None
    extra_headers: TextMap | None = Field(default=None, repr=False)
    mock_response: Any = None
    extra_body: AnyMap | None = None
    """Merged into every upstream request body (the operator's values win)."""
    drop_params: bool | list[str] | None = None
    """True/false overrides `litellm_settings.drop_params` here; a list names params to drop."""
    litellm_credential_name: Text | None = None
    # AWS (Bedrock)
    aws_region_name: Text | None = None
    aws_access_key_id: Text | None = Field(default=None, repr=False)
    aws_secret_access_key: Text | None = Field(default=None, repr=False)
    aws_session_token: Text | None = Field(default=None, repr=False)
    aws_bedrock_runtime_endpoint: Text | None = None
    # Prompt templates for completion-style backends
    initial_prompt_value: Text | None = None
    final_prompt_value: Text | None = None
    bos_token: Text | None = None
    eos_token: Text | None = None
    roles: dict[str, TextMap] | None = None
    # OpenAI request defaults (see REQUEST_PARAMS)
    temperature: Number | None = None
    top_p: Number | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    seed: Integer | None = None
    stop: TextOrList | None = None
    presence_penalty: Number | None = None
    frequency_penalty: Number | None = None
    n: PositiveInt | None = None
    response_format: AnyMap | None = None
    user: Text | None = None
    logit_bias: AnyMap | None = None
    reasoning_effort: Text | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Provider-specific extras are not marked repr=False; hide the ones named like secrets.
        for name, value in super().__repr_args__():
            if name in type(self).model_fields or not _SECRET_NAME.search(name or ""):
                yield name, value

    def request_defaults(self) -> dict[str, Any]:
        """The OpenAI request parameters this deployment sets, to fill in what a request omits."""
        values = {name: getattr(self, name) for name in REQUEST_PARAMS}
        return {name: value for name, value in values.items() if value is not None}

    def provider_params(self) -> dict[str, Any]:
        """Every value that is set, provider-specific extras included."""
        return self.model_dump(exclude_none=True)


class CustomTokenizer(Section):
    identifier: Text
    revision: Text = "main"
    auth_token: Text | None = Field(default=None, repr=False)


class ModelInfo(Section):
    """Metadata about a deployment. Free-form: unlisted keys are kept without complaint."""

    model_config = ConfigDict(extra="allow")

    id: Text | None = None
    version: TextOrInt | None = None
    mode: Text | None = None
    base_model: Text | None = None
    supported_environments: TextList | None = None
    access_groups: TextList | None = None
    custom_tokenizer: CustomTokenizer | None = None
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    max_parallel_requests: PositiveInt | None = None


class ModelEntry(Section):
    """One deployment: the public name it serves and how to reach it."""

    model_name: Text
    litellm_params: LitellmParams
    model_info: ModelInfo = Field(default_factory=ModelInfo)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None


class Credential(Section):
    """A named set of provider settings that deployments pull in by `litellm_credential_name`."""

    credential_name: Text
    credential_values: AnyMap = Field(default_factory=dict, repr=False)
    credential_info: AnyMap = Field(default_factory=dict)


class Config(Section):
    """The whole config file, validated and with every `os.environ/` reference resolved."""

    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {
            "assistant_settings",
            "callback_settings",
            "files_settings",
            "finetune_settings",
            "guardrails",
            "mcp_servers",
            "prompts",
            "search_tools",
            "vector_store_registry",
        }
    )

    model_list: list[ModelEntry] = Field(default_factory=list)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    litellm_settings: LitellmSettings = Field(default_factory=LitellmSettings)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    environment_variables: dict[str, str] = Field(default_factory=dict, repr=False)
    credential_list: list[Credential] = Field(default_factory=list)
    tenants: TenantsSection = Field(default_factory=TenantsSection)
    """Virtual keys and teams declared in the file (docs/tenants.md)."""

    # Set by parse_config; private so the process environment never shows up in repr().
    _env: Mapping[str, str] = PrivateAttr(default_factory=lambda: MappingProxyType({}))
    _warnings: tuple[str, ...] = PrivateAttr(default=())
    _source: str = PrivateAttr(default="<config>")
    _origin: Any = PrivateAttr(default=None)  # sources.Origin when read by load_config
    _secrets: Any = PrivateAttr(default=None)  # secrets.load.Binding with a secret manager

    @property
    def env(self) -> Mapping[str, str]:
        """`environment_variables` overlaid by the process environment (the process wins).

        Read-only. Anything in laneway that needs an environment variable for this config
        reads it here, never from os.environ.
        """
        return self._env

    @property
    def warnings(self) -> list[str]:
        """One line per thing that was ignored or overridden, by YAML path: an unknown key
        (`router_settings.foo: unknown key, ignored`), an unsupported callback, a section an
        include replaced."""
        return list(self._warnings)

    @property
    def source(self) -> str:
        """Where the config was read from (a path or URI), as error messages name it."""
        return self._source
