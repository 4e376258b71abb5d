"""On Lambda: the handler (Mangum + flush) invoked in-process with Function URL events, in a
subprocess that has AWS_LAMBDA_FUNCTION_NAME set. Metrics come out as CloudWatch EMF lines on
stdout, and callbacks are delivered before each invocation returns."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import orjson
import pytest

from tests.support.gateway import clean_env, write_config
from tests.support.procs import PYTHON, REPO
from tests.support.receivers import Receiver, langfuse_receiver
from tests.support.redis_server import RedisServer

SCRIPT = r'''
import json, sys, urllib.request

import handler.aws_lambda as entry


class Context:
    function_name = "laneway-emf-test"
    aws_request_id = "c0ffee"
    memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self):
        return 30000


def event(body):
    raw = json.dumps(body)
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/v1/chat/completions",
        "rawQueryString": "", "isBase64Encoded": False, "body": raw,
        "headers": {"content-type": "application/json", "host": "x.lambda-url.on.aws",
                    "x-forwarded-proto": "https", "x-forwarded-port": "443",
                    "x-forwarded-for": "203.0.113.9", "content-length": str(len(raw))},
        "requestContext": {
            "accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.on.aws",
            "domainPrefix": "x", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000,
            "http": {"method": "POST", "path": "/v1/chat/completions", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "test"}},
    }


msgs = [{"role": "user", "content": "hello"}]
calls = [{"model": "m", "messages": msgs},
         {"model": "limited", "messages": msgs},
         {"model": "limited", "messages": msgs, "priority": 7},
         {"model": "m", "messages": msgs, "stream": True}]
for i, body in enumerate(calls):
    response = entry.handler(event(body), Context())
    # The receiver is asked only after the handler returned: nothing runs in between.
    count = json.load(urllib.request.urlopen(sys.argv[1] + "/_received"))["received"]
    print(json.dumps({"marker": i, "status": response["statusCode"], "received": count}),
          flush=True)
print(json.dumps({"prometheus_loaded": "prometheus_client" in sys.modules}), flush=True)
'''

CONFIG = {
    "model_list": [
        {"model_name": "m", "litellm_params": {"model": "gpt-4o", "mock_response": "hi there"}},
        {"model_name": "limited", "litellm_params": {"model": "gpt-4o", "mock_response": "x",
                                                     "rpm": 1}},
    ],
    "router_settings": {"max_queue_size": 0},
    "litellm_settings": {"success_callback": ["langfuse"]},
}


@pytest.fixture(scope="module")
def invocation(redis_server: RedisServer) -> Iterator[tuple[list[dict], list[dict], Receiver]]:
    """(EMF documents, markers) printed on stdout by four invocations."""
    lf = langfuse_receiver()
    path = write_config(CONFIG)
    env = {**clean_env(), "AWS_LAMBDA_FUNCTION_NAME": "laneway-emf-test",
           "CONFIG_FILE_PATH": str(path), "REDIS_URL": redis_server.url,
           "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", "LANGFUSE_HOST": lf.url,
           "LANEWAY_CALLBACK_FLUSH_SECONDS": "30", "PYTHONPATH": str(REPO)}
    try:
        result = subprocess.run([PYTHON, "-c", SCRIPT, lf.url], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        docs = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
        yield ([d for d in docs if "_aws" in d], [d for d in docs if "_aws" not in d], lf)
    finally:
        lf.stop()
    os.unlink(path)


def test_callbacks_are_flushed_before_each_invocation_returns(invocation) -> None:
    _, markers, lf = invocation
    assert [m.get("status") for m in markers[:4]] == [200, 200, 429, 200]
    # Success callbacks only: invocations 1, 2 and 4 each delivered their own batch at once,
    # although the background interval (30 s) had not come round.
    assert [m["received"] for m in markers[:4]] == [1, 2, 2, 3]
    assert all(len(got.json["batch"]) == 2 for got in lf.received)


def test_prometheus_is_not_imported_on_lambda(invocation) -> None:
    _, markers, _ = invocation
    assert markers[-1] == {"prometheus_loaded": False}


def test_emf_documents_are_well_formed(invocation) -> None:
    docs, _, _ = invocation
    assert docs
    for doc in docs:
        meta = doc["_aws"]
        assert isinstance(meta["Timestamp"], int)
        for directive in meta["CloudWatchMetrics"]:
            assert directive["Namespace"] == "laneway"
            for dims in directive["Dimensions"]:
                assert all(isinstance(doc[d], str) for d in dims)
            for metric in directive["Metrics"]:
                assert metric["Unit"] in ("Seconds", "Count")
                v = doc[metric["Name"]]
                values = v if isinstance(v, list) else [v]
                assert values and all(isinstance(x, int | float) for x in values)


def test_emf_request_metrics(invocation) -> None:
    docs, _, _ = invocation
    requests = [d for d in docs if "laneway_requests_total" in d]
    assert [(d["model_group"], d["status"]) for d in requests] == [
        ("m", "200"), ("limited", "200"), ("limited", "429"), ("m", "200")]
    ok, _, limited, stream = requests
    assert ok["gen_ai_client_token_usage_output"] == 2
    assert ok["gen_ai_client_operation_duration_seconds"] > 0
    assert ok["laneway_admissions_total"] == 1 and ok["priority"] == "0"
    assert limited["laneway_rate_limited_total"] == 1 and limited["priority"] == "7"
    assert "laneway_admissions_total" not in limited
    assert stream["gen_ai_server_time_to_first_token_seconds"] >= 0
    names = {m["Name"] for d in requests for directive in d["_aws"]["CloudWatchMetrics"]
             for m in directive["Metrics"]}
    assert {"laneway_request_duration_seconds", "laneway_overhead_seconds",
            "gen_ai_client_token_usage_input"} <= names


def test_emf_redis_latency(invocation) -> None:
    docs, _, _ = invocation
    redis = [d for d in docs if "laneway_redis_operation_duration_seconds" in d]
    ops = {d["operation"] for d in redis}
    assert {"admit", "release"} <= ops
    admits = sum(len(d["laneway_redis_operation_duration_seconds"]) for d in redis
                 if d["operation"] == "admit")
    assert admits == 4  # one admission round trip per request
