"""Observability settings, read once from the config and its environment (`config.env`).

From the config file: `litellm_settings.success_callback` / `failure_callback` / `callbacks`
and `general_settings.alerting` / `alerting_threshold`. Everything else comes from environment
variables (which a config may also set under `environment_variables:`); docs/observability.md
lists them. Problems (a callback without its keys) are returned as messages for the gateway to
log; they never stop it from serving. An unknown callback is one of the config's warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.config.callbacks import CALLBACKS
from router.errors import ConfigError
from router.observe.langfuse import DEFAULT_HOST, LangfuseTarget
from router.observe.webhook import WebhookTarget, parse_headers

if TYPE_CHECKING:
    from router.config import Config

__all__ = ["AlertSettings", "ObserveSettings"]

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class AlertSettings:
    slack_url: str = field(repr=False)
    hanging_after: float = 300.0
    """`alerting_threshold`: a request with no response after this long is hanging."""
    slow_after: float = 300.0
    """An upstream call that took longer than this is a slow response."""
    queue_depth: int = 500
    queue_wait: float = 60.0
    window: float = 300.0
    """At most one message per kind of alert per window."""

    @property
    def check_every(self) -> float:
        return min(max(self.hanging_after / 4, 0.05), 5.0)


@dataclass(frozen=True, slots=True)
class ObserveSettings:
    success: frozenset[str] = frozenset()
    failure: frozenset[str] = frozenset()
    langfuse: LangfuseTarget | None = None
    webhook: WebhookTarget | None = None
    alerts: AlertSettings | None = None
    prometheus: bool = True
    emf: bool = False
    emf_namespace: str = "laneway"
    on_lambda: bool = False
    log_content: bool = True
    batch_size: int = 50
    flush_interval: float = 1.0
    problems: tuple[str, ...] = ()

    @property
    def callbacks(self) -> frozenset[str]:
        return self.success | self.failure

    @classmethod
    def from_config(cls, config: Config) -> ObserveSettings:
        env = config.env
        problems: list[str] = []
        ls, gs = config.litellm_settings, config.general_settings
        both = set(ls.callbacks or ())
        success = _names(set(ls.success_callback or ()) | both)
        failure = _names(set(ls.failure_callback or ()) | both)
        content = not (_flag(getattr(ls, "turn_off_message_logging", None))
                       or _flag(env.get("LANEWAY_TURN_OFF_MESSAGE_LOGGING")))
        wanted = success | failure
        on_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        prometheus, emf = _metrics_modes(env, on_lambda, "prometheus" in wanted)
        return cls(
            success=success - {"prometheus"},
            failure=failure - {"prometheus"},
            langfuse=_langfuse(env, content, problems) if "langfuse" in wanted else None,
            webhook=_webhook(env, content, problems) if "webhook" in wanted else None,
            alerts=_alerts(env, gs.alerting or (), gs.alerting_threshold, problems),
            prometheus=prometheus,
            emf=emf,
            emf_namespace=env.get("LANEWAY_EMF_NAMESPACE") or "laneway",
            on_lambda=on_lambda,
            log_content=content,
            batch_size=int(_number(env, "LANEWAY_CALLBACK_BATCH_SIZE", 50, minimum=1)),
            flush_interval=_number(env, "LANEWAY_CALLBACK_FLUSH_SECONDS", 1.0, minimum=0.01),
            problems=tuple(problems),
        )


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number") from None
    if value < minimum:
        raise ConfigError(f"environment variable {name} must be at least {minimum:g}")
    return value


def _names(names: set[str]) -> frozenset[str]:
    # Unsupported names were already reported, once each, with their path (config.warnings).
    out = set()
    for name in names:
        key = name.strip().lower()
        if key in CALLBACKS:
            out.add("webhook" if key == "generic_api" else key)
    return frozenset(out)


def _metrics_modes(env: Mapping[str, str], on_lambda: bool, asked: bool) -> tuple[bool, bool]:
    raw = (env.get("LANEWAY_METRICS") or "").strip().lower()
    if not raw:
        return (asked or not on_lambda), on_lambda
    modes = {m.strip() for m in raw.split(",") if m.strip()}
    unknown = modes - {"prometheus", "emf", "off", "none"}
    if unknown:
        raise ConfigError("LANEWAY_METRICS must list `prometheus` and/or `emf`, or be `off`")
    return "prometheus" in modes, "emf" in modes


def _langfuse(env: Mapping[str, str], content: bool, problems: list[str]) -> LangfuseTarget | None:
    public, secret = env.get("LANGFUSE_PUBLIC_KEY"), env.get("LANGFUSE_SECRET_KEY")
    if not public or not secret:
        problems.append("the langfuse callback needs LANGFUSE_PUBLIC_KEY and "
                        "LANGFUSE_SECRET_KEY; it is off")
        return None
    host = env.get("LANGFUSE_HOST") or env.get("LANGFUSE_BASE_URL") or DEFAULT_HOST
    return LangfuseTarget(public, secret, host, content)


def _webhook(env: Mapping[str, str], content: bool, problems: list[str]) -> WebhookTarget | None:
    url = env.get("LANEWAY_WEBHOOK_URL") or env.get("GENERIC_LOGGER_ENDPOINT")
    if not url:
        problems.append("the webhook callback needs LANEWAY_WEBHOOK_URL; it is off")
        return None
    headers = parse_headers(env.get("LANEWAY_WEBHOOK_HEADERS")
                            or env.get("GENERIC_LOGGER_HEADERS"))
    return WebhookTarget(url, headers, content)


def _alerts(
    env: Mapping[str, str], kinds: Any, threshold: float | None, problems: list[str]
) -> AlertSettings | None:
    wanted = {str(k).strip().lower() for k in kinds}
    for other in sorted(wanted - {"slack"}):
        problems.append(f"alerting '{other}' is not supported by laneway (only slack)")
    if "slack" not in wanted:
        return None
    url = env.get("SLACK_WEBHOOK_URL")
    if not url:
        problems.append("alerting: [slack] needs SLACK_WEBHOOK_URL; alerts are off")
        return None
    hanging = float(threshold) if threshold else 300.0
    return AlertSettings(
        slack_url=url,
        hanging_after=hanging,
        slow_after=_number(env, "LANEWAY_ALERT_SLOW_SECONDS", hanging),
        queue_depth=int(_number(env, "LANEWAY_ALERT_QUEUE_DEPTH", 500)),
        queue_wait=_number(env, "LANEWAY_ALERT_QUEUE_WAIT_SECONDS", 60.0),
        window=_number(env, "LANEWAY_ALERT_WINDOW_SECONDS", 300.0),
    )
