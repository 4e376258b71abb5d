"""The built Lambda package under the Lambda Runtime Interface Emulator, fed the HTTP events that
Function URLs, API Gateway (REST and HTTP APIs) and ALBs send, base64 bodies included; plus a
cold start that reads the config from S3 (moto's server) like a deployed function does."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import events, tools
from tests.deploy.conftest import LambdaPackage
from tests.deploy.lambda_runtime import EmulatedFunction, Invocation, emulate
from tests.support.procs import free_port

MASTER_KEY = "sk-lambda-rie-master-key"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
EXAMPLE_CONFIG = tools.REPO / "examples" / "config.yaml"
CHAT = json.dumps({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "Say hello"}]}).encode()

EventBuilder = Callable[..., dict[str, Any]]
SOURCES: dict[str, EventBuilder] = {
    "function-url": events.function_url,
    "api-gateway-v2": events.api_gateway_v2,
    "api-gateway-v1": events.api_gateway_v1,
    "alb": events.alb,
}


@pytest.fixture(scope="module")
def function(lambda_package: LambdaPackage, lambda_runtime_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedFunction]:
    """One warm function on the example config, guarded by a master key as deployed."""
    # The package is shared and read-only in spirit; the config rides along beside it.
    config = tmp_path_factory.mktemp("config") / "config.yaml"
    shutil.copy(EXAMPLE_CONFIG, config)
    with emulate(tools.rie_binary(), lambda_package.directory, lambda_runtime_dir,
                 {"CONFIG_FILE_PATH": str(config), "LANEWAY_MASTER_KEY": MASTER_KEY,
                  "NO_DOCS": "True"}) as fn:
        yield fn


def assert_chat_completion(result: Invocation) -> None:
    assert result.status == 200, result.raw
    assert result.header("content-type") == "application/json"
    reply = result.json()
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"].startswith("Hello from laneway")
    assert reply["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("as_base64", [False, True], ids=["text-body", "base64-body"])
@pytest.mark.parametrize("source", list(SOURCES))
def test_chat_completion_through_every_http_source(
    function: EmulatedFunction, source: str, as_base64: bool
) -> None:
    event = SOURCES[source]("POST", "/v1/chat/completions", body=CHAT, headers=AUTH,
                            as_base64=as_base64)
    assert_chat_completion(function.invoke(event))


def test_alb_with_multi_value_headers_answers_in_kind(function: EmulatedFunction) -> None:
    event = events.alb("POST", "/v1/chat/completions", body=CHAT, headers=AUTH,
                       multi_value=True)
    result = function.invoke(event)
    assert_chat_completion(result)
    # An ALB with multi-value headers on reads multiValueHeaders only.
    assert "multiValueHeaders" in result.raw and "headers" not in result.raw


def test_health_probes_need_no_key(function: EmulatedFunction) -> None:
    for path in ("/health/liveliness", "/health/readiness"):
        assert function.invoke(events.function_url("GET", path)).status == 200, path


def test_missing_or_wrong_key_is_refused_in_openai_shape(function: EmulatedFunction) -> None:
    for headers in ({"Content-Type": "application/json"},
                    {"Authorization": "Bearer sk-wrong", "Content-Type": "application/json"}):
        result = function.invoke(events.function_url("POST", "/v1/chat/completions", body=CHAT,
                                                     headers=headers))
        assert result.status == 401, result.raw
        error = result.json()["error"]
        assert set(error) >= {"message", "type", "param", "code"}
        assert MASTER_KEY not in result.body.decode()


def test_bad_json_is_a_clear_client_error(function: EmulatedFunction) -> None:
    result = function.invoke(events.function_url("POST", "/v1/chat/completions",
                                                 body=b'{"model": "gpt-4o-mini", "messages": [',
                                                 headers=AUTH, as_base64=True))
    assert 400 <= result.status < 500, result.raw
    assert result.json()["error"]["message"]


def test_buffered_mode_returns_a_stream_as_one_body(function: EmulatedFunction) -> None:
    """Mangum buffers: a `stream: true` request still succeeds, its SSE events in one body."""
    body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    result = function.invoke(events.function_url("POST", "/v1/chat/completions", body=body,
                                                 headers=AUTH))
    assert result.status == 200, result.raw
    assert (result.header("content-type") or "").startswith("text/event-stream")
    lines = [ln for ln in result.body.decode().splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[len("data: "):]) for ln in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.startswith("Hello from laneway")


def test_cold_start_reads_the_config_from_s3(
    lambda_package: LambdaPackage, lambda_runtime_dir: Path
) -> None:
    """The deployed shape: LANEWAY_CONFIG=s3://..., boto3 from the runtime (not the package)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="laneway-config")
        s3.put_object(Bucket="laneway-config", Key="prod/config.yaml", Body=(
            b"model_list:\n"
            b"  - model_name: gpt-4o-mini\n"
            b"    litellm_params:\n"
            b"      model: openai/gpt-4o-mini\n"
            b"      mock_response: \"Read from S3 at cold start.\"\n"
            b"general_settings:\n"
            b"  master_key: os.environ/LANEWAY_TEST_KEY\n"))
        s3.close()
        env = {"LANEWAY_CONFIG": "s3://laneway-config/prod/config.yaml",
               "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "LANEWAY_TEST_KEY": MASTER_KEY}
        with emulate(tools.rie_binary(), lambda_package.directory, lambda_runtime_dir,
                     env) as fn:
            result = fn.invoke(events.function_url("POST", "/v1/chat/completions", body=CHAT,
                                                   headers=AUTH, as_base64=True))
            assert result.status == 200, result.raw
            assert result.json()["choices"][0]["message"]["content"] == (
                "Read from S3 at cold start.")
            # A second invocation reuses the container's app: no second read is needed.
            again = fn.invoke(events.api_gateway_v2("POST", "/v1/chat/completions", body=CHAT,
                                                    headers=AUTH))
            assert again.status == 200, again.raw
    finally:
        server.stop()
