"""Settings a user can get wrong, metrics switched off, and the overhead header."""

from __future__ import annotations

import time

import httpx

from router.config import parse_config
from router.observe.settings import ObserveSettings
from tests.observability.helpers import chat
from tests.support.gateway import clean_env, start_gateway

CONFIG = {
    "model_list": [{"model_name": "m", "litellm_params": {"model": "gpt-4o",
                                                          "mock_response": "hi"}}],
    "litellm_settings": {"success_callback": ["langfuse", "datadog"],
                         "failure_callback": ["webhook"]},
    "general_settings": {"alerting": ["slack", "email"]},
}


def test_misconfigured_callbacks_are_reported_and_the_gateway_serves() -> None:
    gw = start_gateway(CONFIG, {**clean_env(), "LANEWAY_METRICS": "off"})
    try:
        with gw.client() as c:
            r = c.post("/v1/chat/completions", json=chat("m"))
            assert r.status_code == 200
            m = c.get("/metrics")
            assert m.status_code == 404
            assert m.json()["error"]["type"] == "not_found_error"
            assert "LANEWAY_METRICS" in m.json()["error"]["message"]
    finally:
        output = gw.stop()
    assert "the langfuse callback needs LANGFUSE_PUBLIC_KEY" in output
    assert "callback 'datadog' is not supported" in output
    assert "the webhook callback needs LANEWAY_WEBHOOK_URL" in output
    assert "alerting: [slack] needs SLACK_WEBHOOK_URL" in output
    assert "alerting 'email' is not supported" in output


def test_settings_from_config_and_environment() -> None:
    config = parse_config({
        "litellm_settings": {"callbacks": ["langfuse", "generic_api", "prometheus"]},
        "general_settings": {"alerting": ["slack"], "alerting_threshold": 42},
        "environment_variables": {"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk"},
    }, environ={"GENERIC_LOGGER_ENDPOINT": "http://hook.example/x",
                "SLACK_WEBHOOK_URL": "http://slack.example/s", "AWS_LAMBDA_FUNCTION_NAME": "fn",
                "LANEWAY_ALERT_QUEUE_DEPTH": "7", "LANEWAY_TURN_OFF_MESSAGE_LOGGING": "true"})
    s = ObserveSettings.from_config(config)
    assert s.success == s.failure == frozenset({"langfuse", "webhook"})
    assert s.langfuse is not None and s.langfuse.host == "https://cloud.langfuse.com"
    assert s.webhook is not None and s.webhook.url == "http://hook.example/x"
    assert s.alerts is not None and s.alerts.hanging_after == 42 == s.alerts.slow_after
    assert s.alerts.queue_depth == 7
    # On Lambda: EMF by default; `prometheus` in the callbacks turns /metrics on as well.
    assert s.on_lambda and s.emf and s.prometheus
    assert not s.log_content and not s.langfuse.with_content
    assert s.problems == ()
    assert "pk" not in repr(s) and "sk" not in repr(s.langfuse)


def test_overhead_header() -> None:
    gw = start_gateway(CONFIG, {**clean_env(), "LANEWAY_METRICS": "off"})
    try:
        with gw.client() as c:
            for body in (chat("m"), chat("m", stream=True)):
                started = time.monotonic()
                r = c.post("/v1/chat/completions", json=body,
                           headers={"x-request-id": "client-chosen-id"})
                elapsed_ms = (time.monotonic() - started) * 1000
                assert r.status_code == 200
                assert r.headers["x-request-id"] == "client-chosen-id"
                assert float(r.headers["x-laneway-queue-ms"]) == 0.0
                assert len(r.headers["x-laneway-deployment-id"]) == 16
                overhead = float(r.headers["x-laneway-overhead-ms"])
                assert 0.0 <= overhead < elapsed_ms
        # Errors carry no overhead header (it is only measured for answers).
        r = httpx.post(f"{gw.url}/v1/chat/completions", json=chat("nope"))
        assert r.status_code == 404 and "x-laneway-overhead-ms" not in r.headers
    finally:
        gw.stop()
