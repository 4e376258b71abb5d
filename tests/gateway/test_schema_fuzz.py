"""Fuzz every operation of the gateway's own OpenAPI document with schemathesis, against a real
gateway process over HTTP: data that fits the schema and data that does not, with the model
name sometimes replaced by one the gateway serves (a mock and a loopback fake OpenAI upstream)
so requests get past routing into the engine. No answer may be a 5xx, and every 4xx must be an
OpenAI error body. Bounded: a few dozen examples per operation and mode, seconds in all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from handler.errors import is_anthropic_path
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway

KEY = "sk-fuzz-master-0123456789abcdef"
EXAMPLES = 25
MODELS = [None, "mocked", "openai/fuzz"]


@pytest.fixture(scope="module")
def gw(fake_openai: FakeUpstream) -> Iterator[Gateway]:
    config = {
        "model_list": [
            {"model_name": "mocked", "litellm_params": {
                "model": "gpt-4o-mini", "mock_response": "fuzzed"}},
            {"model_name": "openai/*", "litellm_params": {
                "model": "openai/*", "api_base": fake_openai.url, "api_key": "x"}},
        ],
        "router_settings": {"num_retries": 0, "timeout": 2},
        "general_settings": {"master_key": KEY},
    }
    gateway = start_gateway(config, clean_env(), key=KEY)
    yield gateway
    gateway.stop()


def check(case: Any, response: Any) -> None:
    where = f"{case.method} {case.path} {case.body!r:.300}"
    assert response.status_code < 500, f"{response.status_code} on {where}: {response.text:.500}"
    if response.status_code >= 400:
        body = response.json()
        if is_anthropic_path(case.path):  # Anthropic's Messages API, Anthropic's error shape
            assert isinstance(body, dict) and body.get("type") == "error", (where, body)
            assert set(body["error"]) == {"type", "message"}, (where, body)
            return
        assert isinstance(body, dict) and set(body) == {"error"}, (where, body)
        assert set(body["error"]) == {"message", "type", "param", "code"}, (where, body)


def operations(gw: Gateway) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{gw.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_a_server_error(gw: Gateway, mode: GenerationMode) -> None:
    ops = operations(gw)
    paths = {op.path for op in ops}
    # The document describes the inference bodies (handler/openapi.py), not just the paths.
    assert {"/v1/chat/completions", "/v1/embeddings", "/utils/token_counter"} <= paths
    headers = {"authorization": f"Bearer {KEY}"}
    served: set[str] = set()
    for op in ops:
        if mode is GenerationMode.NEGATIVE and not list(op.body):
            continue  # nothing to break in a GET without parameters

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(model=st.sampled_from(MODELS), case=op.as_strategy(generation_mode=mode))
        def fuzz(model: str | None, case: Any) -> None:
            if model and isinstance(case.body, dict):
                case.body = {**case.body, "model": model}
            response = case.call(base_url=gw.url, headers=headers, timeout=15)
            check(case, response)
            if response.status_code == 200:
                served.add(case.path)

        fuzz()
    if mode is GenerationMode.POSITIVE:
        # Some fuzzed requests went all the way through the engine to an answer.
        assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"} <= served
