"""The three settings sections: `router_settings`, `litellm_settings`, `general_settings`.

Each lists the LiteLLM keys laneway knows but does not act on (`accepted_unused`), so a
LiteLLM file loads without a wall of warnings while real typos still get one.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator
from pydantic_core import PydanticCustomError

from router.config.fields import (
    AliasMap,
    AnyMap,
    Fallbacks,
    Flag,
    NonNegativeInt,
    NonNegativeNumber,
    Port,
    PositiveInt,
    PositiveNumber,
    QueueSize,
    Section,
    Text,
    TextList,
)

ROUTING_STRATEGIES: tuple[str, ...] = (
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
)


def _routing_strategy(value: Any) -> str:
    if isinstance(value, str) and value in ROUTING_STRATEGIES:
        return value
    shown = f"'{value}'" if isinstance(value, str) else "this value"
    raise PydanticCustomError(
        "laneway_config",
        f"unknown routing strategy {shown}; use one of: {', '.join(ROUTING_STRATEGIES)}",
    )


RoutingStrategy = Annotated[str, PlainValidator(_routing_strategy)]

FAIRNESS_MODES: tuple[str, ...] = ("key", "team", "user", "off")


def _fairness(value: Any) -> str:
    if value is False:
        return "off"
    if isinstance(value, str) and value in FAIRNESS_MODES:
        return value
    raise PydanticCustomError(
        "laneway_config", f"fairness must be one of: {', '.join(FAIRNESS_MODES)}")


Fairness = Annotated[str, PlainValidator(_fairness)]


def _reservation(value: Any) -> dict[str, float]:
    """`{"prod": 0.9, "dev": 0.1}`: tier name → share of capacity, each in [0, 1], at most 1
    in all."""
    if isinstance(value, dict) and value and all(
            isinstance(k, str) and k and isinstance(v, int | float) and not isinstance(v, bool)
            and 0 <= v <= 1 for k, v in value.items()) and sum(value.values()) <= 1 + 1e-9:
        return {k: float(v) for k, v in value.items()}
    raise PydanticCustomError(
        "laneway_config", "priority_reservation must map tier names to shares between 0 and "
        "1 that add up to at most 1, e.g. {\"prod\": 0.9, \"dev\": 0.1}")


Reservation = Annotated[dict[str, float], PlainValidator(_reservation)]


class RouterSettings(Section):
    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {
            "alerting_config",
            "allowed_fails_policy",
            "assistants_config",
            "cache_kwargs",
            "cache_responses",
            "caching_groups",
            "client_ttl",
            "debug_level",
            "default_litellm_params",
            "deployment_affinity_ttl_seconds",
            "disable_cooldowns",
            "enable_tag_filtering",
            "ignore_invalid_deployments",
            "model_group_retry_policy",
            "optional_pre_call_checks",
            "provider_budget_config",
            "retry_policy",
            "router_general_settings",
            "set_verbose",
            "tag_filtering_match_any",
        }
    )

    routing_strategy: RoutingStrategy = "simple-shuffle"
    routing_strategy_args: AnyMap = Field(default_factory=dict)
    model_group_alias: AliasMap = Field(default_factory=dict)
    num_retries: NonNegativeInt | None = None
    timeout: PositiveNumber | None = None
    stream_timeout: PositiveNumber | None = None
    polling_interval: PositiveNumber | None = None
    retry_after: NonNegativeNumber | None = None
    allowed_fails: NonNegativeInt | None = None
    cooldown_time: NonNegativeNumber | None = None
    max_cooldown_seconds: PositiveNumber | None = None
    fairness: Fairness | None = None
    fairness_output_weight: NonNegativeNumber | None = None
    priority_reservation: Reservation | None = None
    priority_aging: NonNegativeNumber | None = None
    redis_host: Text | None = None
    redis_port: Port | None = None
    redis_password: Text | None = Field(default=None, repr=False)
    redis_url: Text | None = Field(default=None, repr=False)  # may embed a password
    redis_fail_open: Flag = False
    fallbacks: Fallbacks | None = None
    context_window_fallbacks: Fallbacks | None = None
    content_policy_fallbacks: Fallbacks | None = None
    default_fallbacks: TextList | None = None
    default_priority: NonNegativeInt | None = None
    max_queue_size: QueueSize | None = None
    queue_lease_seconds: PositiveNumber | None = None
    default_max_parallel_requests: PositiveInt | None = None
    enable_pre_call_checks: Flag | None = None
    max_response_bytes: PositiveInt | None = None


CACHE_SCOPES: tuple[str, ...] = ("key", "team", "global")
CACHE_MODES: tuple[str, ...] = ("default_on", "default_off")
CACHE_CALL_TYPES: dict[str, str] = {
    "completion": "chat", "acompletion": "chat",
    "text_completion": "text", "atext_completion": "text",
    "embedding": "embed", "aembedding": "embed",
    "responses": "responses", "aresponses": "responses",
}
"""LiteLLM's call type names → laneway endpoints (the Responses route is not served yet)."""


def _one_of(name: str, choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise PydanticCustomError(
            "laneway_config", f"{name} must be one of: {', '.join(choices)}")
    return PlainValidator(check)


def _call_types(value: Any) -> list[str]:
    if isinstance(value, list) and value and all(
            isinstance(v, str) and v in CACHE_CALL_TYPES for v in value):
        return list(value)
    raise PydanticCustomError(
        "laneway_config",
        f"supported_call_types must be a list of: {', '.join(CACHE_CALL_TYPES)}")


class CacheParams(Section):
    """`litellm_settings.cache_params` (router/cache, docs/cache.md). `type` None follows the
    state backend: the state Redis when there is one, the in-process cache otherwise."""

    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {"similarity_threshold", "redis_semantic_cache_embedding_model",
         "redis_semantic_cache_index_name", "qdrant_semantic_cache_embedding_model",
         "qdrant_collection_name", "qdrant_quantization_config", "qdrant_api_base",
         "qdrant_api_key", "s3_bucket_name", "s3_region_name", "s3_api_version", "s3_use_ssl",
         "s3_verify", "s3_endpoint_url", "s3_aws_access_key_id", "s3_aws_secret_access_key",
         "s3_aws_session_token", "s3_config", "s3_path", "disk_cache_dir", "redis_startup_nodes",
         "service_name", "sentinel_nodes", "default_in_memory_ttl", "default_in_redis_ttl",
         "gcs_bucket_name", "gcs_path_service_account", "gcs_path"})

    type: Text | None = None
    host: Text | None = None
    port: Port | None = None
    password: Text | None = Field(default=None, repr=False)
    url: Text | None = Field(default=None, repr=False)  # may embed a password
    namespace: Text | None = None
    ttl: PositiveNumber = 600.0
    supported_call_types: Annotated[list[str], PlainValidator(_call_types)] | None = None
    mode: Annotated[str, _one_of("mode", CACHE_MODES)] = "default_on"
    scope: Annotated[str, _one_of("scope", CACHE_SCOPES)] = "key"
    max_entry_bytes: PositiveInt = 1_048_576
    max_size_in_memory: PositiveInt = 1000
    lock_lease_seconds: PositiveNumber = 10.0


class LitellmSettings(Section):
    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {
            "budget_duration",
            "callback_settings",
            "default_internal_user_params",
            "default_key_generate_params",
            "default_team_settings",
            "disable_end_user_cost_tracking",
            "enable_json_schema_validation",
            "enable_preview_features",
            "extra_spend_tag_headers",
            "force_ipv4",
            "key_generation_settings",
            "langfuse_default_tags",
            "log_raw_request_response",
            "max_budget",
            "max_internal_user_budget",
            "modify_params",
            "redact_messages_in_exceptions",
            "redact_user_api_key_info",
            "return_response_headers",
            "service_callback",
            "ssl_verify",
            "store_audit_logs",
            "telemetry",
            "turn_off_message_logging",
            "upperbound_key_generate_params",
        }
    )

    drop_params: Flag = False
    num_retries: NonNegativeInt | None = None
    request_timeout: PositiveNumber | None = None
    allowed_fails: NonNegativeInt | None = None
    cooldown_time: NonNegativeNumber | None = None
    fallbacks: Fallbacks | None = None
    context_window_fallbacks: Fallbacks | None = None
    content_policy_fallbacks: Fallbacks | None = None
    default_fallbacks: TextList | None = None
    success_callback: TextList | None = None
    failure_callback: TextList | None = None
    callbacks: TextList | None = None
    set_verbose: Flag | None = None
    json_logs: Flag | None = None
    default_max_tokens: PositiveInt | None = None
    priority_reservation: Reservation | None = None
    cache: Flag = False
    cache_params: CacheParams = Field(default_factory=CacheParams)


KEY_MANAGEMENT_SYSTEMS: tuple[str, ...] = (
    "aws_secret_manager", "google_secret_manager", "azure_key_vault", "hashicorp_vault")
ACCESS_MODES: tuple[str, ...] = ("read_only", "read_and_write", "write_only")


class KeyManagementSettings(Section):
    """`general_settings.key_management_settings` (router/secrets, docs/configuration.md).
    LiteLLM's names where it has them; `prefix`, `refresh_interval`, `api_base` and `timeout`
    are laneway's."""

    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {"store_virtual_keys", "prefix_for_stored_virtual_keys", "custom_secret_manager",
         "description", "tags"})

    hosted_keys: TextList | None = None
    access_mode: Annotated[str, _one_of("access_mode", ACCESS_MODES)] = "read_only"
    primary_secret_name: Text | None = None
    prefix: Text | None = None
    refresh_interval: PositiveNumber | None = None
    api_base: Text | None = None
    timeout: PositiveNumber = 5.0


class GeneralSettings(Section):
    accepted_unused: ClassVar[frozenset[str]] = frozenset(
        {
            "admin_only_routes",
            "alert_to_webhook_url",
            "alert_types",
            "allow_requests_on_db_unavailable",
            "allowed_routes",
            "background_health_checks",
            "custom_auth",
            "database_connection_pool_limit",
            "database_connection_timeout",
            "database_url",
            "disable_master_key_return",
            "disable_reset_budget",
            "disable_spend_logs",
            "enable_jwt_auth",
            "enforce_user_param",
            "forward_openai_org_id",
            "global_max_parallel_requests",
            "health_check_details",
            "health_check_interval",
            "infer_model_from_keys",
            "litellm_jwtauth",
            "max_parallel_requests",
            "maximum_spend_logs_retention_period",
            "otel",
            "pass_through_endpoints",
            "proxy_batch_write_at",
            "public_routes",
            "store_model_in_db",
            "ui_access_mode",
            "use_redis_transaction_buffer",
            "use_x_forwarded_for",
            "user_header_name",
        }
    )

    master_key: Text | None = Field(default=None, repr=False)
    key_management_system: Annotated[
        str, _one_of("key_management_system", KEY_MANAGEMENT_SYSTEMS)] | None = None
    key_management_settings: KeyManagementSettings = Field(
        default_factory=KeyManagementSettings)
    allow_client_side_mock_response: Flag = True
    alerting: TextList | None = None
    alerting_threshold: PositiveNumber | None = None
    # The edges of the HTTP face (handler/limits.py has the defaults and docs/operations.md why).
    max_request_body_bytes: PositiveInt | None = None
    max_n: PositiveInt | None = None
    request_read_timeout: PositiveNumber | None = None
    config_reload_seconds: PositiveNumber | None = None  # laneway: hot reload (off when unset)
    # /v1/responses and /v1/messages (docs/apis.md).
    forward_client_headers_to_llm_api: Flag | TextList | None = None
    response_store_ttl: PositiveNumber | None = None
    response_store_max_bytes: PositiveInt | None = None
