"""The per-request JSON log line, and the secret scan: a full scripted run at DEBUG level
(callbacks, alerts, Redis with a password, errors, a wrong client key) must print no secret."""

from __future__ import annotations

import base64
import shutil
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.observability.helpers import chat
from tests.support.fake_openai import start_fake_openai
from tests.support.gateway import clean_env, start_gateway
from tests.support.procs import free_port, spawn, stop, wait_port
from tests.support.receivers import receivers

MASTER = "sk-master-secret-7f3a9c"
UPSTREAM = "sk-upstream-secret-b81d2e"
AWS_ID, AWS_SECRET, AWS_TOKEN = ("AKIAEXAMPLESECRET0042", "aws-secret-key-e3b0c44298fc1c14",
                                 "aws-session-token-4d2f0a1b")
LF_PUBLIC, LF_SECRET = "pk-lf-public-0c1d", "sk-lf-secret-a9e8"
HOOK_TOKEN = "whsec-laneway-5c6d7e"
SLACK_PATH = "/services/T0000/B0000/slack-secret-path-42"
REDIS_PASSWORD = "redis-password-3e4f5a"
WRONG_KEY = "sk-client-wrong-key-123abc"


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[str, dict[str, int]]]:
    """One full run; yields (everything the gateway printed, request id -> status)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required"
    port = free_port()
    redis = spawn([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--requirepass", REDIS_PASSWORD])
    wait_port(port, redis)
    upstream = start_fake_openai()
    statuses: dict[str, int] = {}
    with receivers() as (lf, wh, slack):
        config = {
            "model_list": [
                {"model_name": "gpt", "litellm_params": {
                    "model": "openai/gpt-4o", "api_base": upstream.url,
                    "api_key": "os.environ/UPSTREAM_KEY", "aws_access_key_id": AWS_ID,
                    "aws_secret_access_key": AWS_SECRET, "aws_session_token": AWS_TOKEN}},
                {"model_name": "slow", "litellm_params": {
                    "model": "openai/slow+delay=0.8", "api_base": upstream.url,
                    "api_key": "os.environ/UPSTREAM_KEY"}},
                {"model_name": "denied", "litellm_params": {
                    "model": "openai/denied+status=401", "api_base": upstream.url,
                    "api_key": "os.environ/UPSTREAM_KEY"}},
            ],
            "router_settings": {"redis_host": "127.0.0.1", "redis_port": port,
                                "redis_password": "os.environ/REDIS_PW", "num_retries": 0},
            "litellm_settings": {"callbacks": ["langfuse", "webhook"]},
            "general_settings": {"master_key": "os.environ/MASTER", "alerting": ["slack"],
                                 "alerting_threshold": 0.3},
        }
        env = {**clean_env(), "MASTER": MASTER, "UPSTREAM_KEY": UPSTREAM,
               "REDIS_PW": REDIS_PASSWORD, "LANGFUSE_PUBLIC_KEY": LF_PUBLIC,
               "LANGFUSE_SECRET_KEY": LF_SECRET, "LANGFUSE_HOST": lf.url,
               "LANEWAY_WEBHOOK_URL": wh.url,
               "LANEWAY_WEBHOOK_HEADERS": f"Authorization=Bearer {HOOK_TOKEN}",
               "SLACK_WEBHOOK_URL": slack.url + SLACK_PATH,
               "AWS_ACCESS_KEY_ID": AWS_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
        gw = start_gateway(config, env, key=MASTER, args=("--detailed_debug",))
        try:
            client = gw.openai()

            def call(rid: str, model: str, **kw: object) -> None:
                try:
                    client.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": "hi"}],
                        extra_headers={"x-request-id": rid}, **kw)
                    statuses[rid] = 200
                except Exception as exc:
                    statuses[rid] = getattr(exc, "status_code", 0)

            call("log-ok", "gpt")
            for _ in client.chat.completions.create(
                    model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True,
                    extra_headers={"x-request-id": "log-stream"}):
                pass
            statuses["log-stream"] = 200
            call("log-denied", "denied")
            call("log-unknown", "no-such-model")
            threading.Thread(target=call, args=("log-slow", "slow")).start()
            time.sleep(1.2)
            r = httpx.post(f"{gw.url}/v1/chat/completions", json=chat("gpt"),
                           headers={"authorization": f"Bearer {WRONG_KEY}",
                                    "x-request-id": "log-wrong-key"})
            statuses["log-wrong-key"] = r.status_code
            assert httpx.get(f"{gw.url}/metrics", headers=gw.headers()).status_code == 200
            assert httpx.get(f"{gw.url}/model/info", headers=gw.headers()).status_code == 200
            lf.wait_for(1)
            wh.wait_for(1)
            slack.wait_for(1)
        finally:
            output = gw.stop()
            upstream.stop()
            output += stop(redis)
    yield output, statuses


def request_lines(output: str) -> list[dict]:
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines
            if line.get("logger") == "laneway.request" and line["level"] == "INFO"]


def test_no_secret_is_ever_printed(run: tuple[str, dict[str, int]]) -> None:
    output, statuses = run
    assert statuses == {"log-ok": 200, "log-stream": 200, "log-denied": 401,
                        "log-unknown": 404, "log-slow": 200, "log-wrong-key": 401}
    # The run really logged at DEBUG, callback deliveries included.
    assert '"level":"DEBUG","logger":"laneway.request","message":"request started"' in output
    assert '"logger":"laneway.callbacks","message":"langfuse: delivered' in output
    basic = base64.b64encode(f"{LF_PUBLIC}:{LF_SECRET}".encode()).decode()
    for secret in (MASTER, UPSTREAM, AWS_ID, AWS_SECRET, AWS_TOKEN, LF_SECRET, basic,
                   HOOK_TOKEN, SLACK_PATH, REDIS_PASSWORD, WRONG_KEY):
        assert secret not in output, f"a secret leaked into the gateway's output: {secret[:6]}…"


def test_one_json_line_per_request(run: tuple[str, dict[str, int]]) -> None:
    output, statuses = run
    lines = request_lines(output)
    by_id: dict[str, list[dict]] = {}
    for line in lines:
        by_id.setdefault(line.get("request_id"), []).append(line)
    for rid in statuses:
        assert len(by_id.get(rid, [])) == 1, rid
    ok = by_id["log-ok"][0]
    assert ok["level"] == "INFO" and ok["message"] == "request"
    assert ok["model_group"] == "gpt" and ok["provider"] == "openai"
    assert ok["status"] == 200 and ok["priority"] == 0 and ok["stream"] is False
    assert len(ok["deployment_id"]) == 16 and ok["retries"] == 0
    assert ok["prompt_tokens"] > 0 and ok["completion_tokens"] > 0
    assert ok["queue_ms"] == 0.0 and ok["upstream_ms"] > 0
    assert 0 <= ok["overhead_ms"] <= ok["duration_ms"]
    assert ok["time"].endswith("Z") and ok["fallback_from"] is None
    stream = by_id["log-stream"][0]
    assert stream["stream"] is True and stream["ttft_ms"] is not None
    denied = by_id["log-denied"][0]
    assert denied["status"] == 401 and denied["error_type"] == "AuthenticationFailed"
    assert denied["overhead_ms"] is None
    assert by_id["log-unknown"][0]["error_type"] == "NotFound"
    assert by_id["log-slow"][0]["upstream_ms"] >= 800
    # Refused before the engine saw it: a shorter line, still one per request.
    wrong = by_id["log-wrong-key"][0]
    assert wrong["status"] == 401 and wrong["path"] == "/v1/chat/completions"


def test_every_line_is_json(run: tuple[str, dict[str, int]]) -> None:
    output, _ = run
    laneway_lines = [line for line in output.splitlines() if '"logger":"laneway' in line]
    assert len(laneway_lines) >= 7
    for line in laneway_lines:
        assert isinstance(orjson.loads(line), dict)


def test_text_format_for_terminals() -> None:
    config = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": "gpt-4o", "mock_response": "hi"}}]}
    gw = start_gateway(config, {**clean_env(), "LANEWAY_LOG_FORMAT": "text"})
    try:
        httpx.post(f"{gw.url}/v1/chat/completions", json=chat("m"),
                   headers={"x-request-id": "text-1"})
    finally:
        output = gw.stop()
    (line,) = [x for x in output.splitlines() if "laneway.request" in x]
    assert " INFO laneway.request: request {" in line
    assert orjson.loads(line.split(": request ", 1)[1])["request_id"] == "text-1"
