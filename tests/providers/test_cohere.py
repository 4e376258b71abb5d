"""Cohere v2 through a real gateway process, the openai SDK as client, against a loopback fake
speaking Cohere's JSON and SSE events (tests/support/fake_cohere.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server
from tests.support.gateway import Gateway, clean_env, start_gateway

KEY = "co-gateway-key-0123456789"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]


@pytest.fixture(scope="module")
def cohere() -> Iterator[tuple[FakeUpstream, Gateway]]:
    fake = start_server("tests.support.fake_cohere", env={"FAKE_COHERE_KEY": KEY})
    config = {"model_list": [
        {"model_name": "command", "litellm_params": {"model": "cohere/command-r-plus",
                                                     "api_base": fake.base}},
        {"model_name": "co/*", "litellm_params": {"model": "cohere/*", "api_base": fake.base}},
        {"model_name": "co-429", "litellm_params": {
            "model": "cohere/command-r+status=429+retry_after=4", "api_base": fake.base}},
        {"model_name": "co-badkey", "litellm_params": {
            "model": "cohere_chat/command-r", "api_base": fake.base, "api_key": "wrong-key-000"}},
    ], "router_settings": {"num_retries": 0, "allowed_fails": 1000}}
    gateway = start_gateway(config, {**clean_env(), "COHERE_API_KEY": KEY})
    yield fake, gateway
    gateway.stop()
    fake.stop()


def _last(fake: FakeUpstream) -> dict[str, Any]:
    return fake.requests()[-1]


def test_chat(cohere: tuple[FakeUpstream, Gateway]) -> None:
    fake, gateway = cohere
    reply = gateway.openai().chat.completions.create(model="command", messages=HI,
                                                     max_tokens=30, top_p=0.5, stop="END")
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 5)
    seen = _last(fake)
    assert seen["path"] == "/v2/chat"
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["body"] == {"model": "command-r-plus", "messages": HI, "max_tokens": 30,
                            "p": 0.5, "stop_sequences": ["END"]}


def test_stream(cohere: tuple[FakeUpstream, Gateway]) -> None:
    _, gateway = cohere
    chunks = list(gateway.openai().chat.completions.create(
        model="command", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (4, 5)


def test_tools_both_ways_and_streamed(cohere: tuple[FakeUpstream, Gateway]) -> None:
    fake, gateway = cohere
    client = gateway.openai()
    question = {"role": "user", "content": "Weather in Paris?"}
    reply = client.chat.completions.create(model="command", messages=[question],
                                           tools=[WEATHER], tool_choice="required")
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "get_weather_fake01", "get_weather", {"city": "Paris"})
    assert _last(fake)["body"]["tool_choice"] == "REQUIRED"
    final = client.chat.completions.create(model="command", tools=[WEATHER], messages=[
        question, reply.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}])
    assert final.choices[0].message.content == DEFAULT_REPLY
    sent = _last(fake)["body"]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}
    stream = client.chat.completions.create(model="command", messages=[question],
                                            tools=[WEATHER], stream=True)
    deltas = [c.choices[0] for c in stream if c.choices]
    parts = [d.delta.tool_calls[0] for d in deltas if d.delta.tool_calls]
    assert parts[0].id == "get_weather_fake01" and parts[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in parts) == '{"city":"Paris"}'
    assert {p.index for p in parts} == {0}
    assert deltas[-1].finish_reason == "tool_calls"


def test_embeddings(cohere: tuple[FakeUpstream, Gateway]) -> None:
    fake, gateway = cohere
    result = gateway.openai().embeddings.create(model="co/embed-english-v3.0",
                                                input=["a b", "a longer text"])
    assert [d.embedding[0] for d in result.data] == pytest.approx([0.03, 0.13])
    assert result.usage.prompt_tokens == 5
    assert _last(fake)["body"] == {"model": "embed-english-v3.0",
                                   "texts": ["a b", "a longer text"],
                                   "input_type": "search_document",
                                   "embedding_types": ["float"]}
    as_query = gateway.client().post("/v1/embeddings", json={
        "model": "co/embed-v4.0", "input": "q", "input_type": "search_query", "dimensions": 3})
    assert as_query.status_code == 200, as_query.text
    assert len(as_query.json()["data"][0]["embedding"]) == 3
    assert _last(fake)["body"]["input_type"] == "search_query"
    assert _last(fake)["body"]["output_dimension"] == 3


@pytest.mark.parametrize(("model", "error", "status"), [
    ("co/command-r+status=400", openai.BadRequestError, 400),
    ("co-badkey", openai.AuthenticationError, 401),
    ("co/command-r+status=503", openai.InternalServerError, 503),
])
def test_errors_are_mapped(cohere: tuple[FakeUpstream, Gateway], model: str,
                           error: type[Exception], status: int) -> None:
    _, gateway = cohere
    with pytest.raises(error) as caught:
        gateway.openai().chat.completions.create(model=model, messages=HI)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert "wrong-key-000" not in str(caught.value)


def test_rate_limit_keeps_retry_after(cohere: tuple[FakeUpstream, Gateway]) -> None:
    _, gateway = cohere
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.openai().chat.completions.create(model="co-429", messages=HI)
    assert caught.value.response.headers["retry-after"] == "4"


def test_an_error_at_the_end_of_a_stream(cohere: tuple[FakeUpstream, Gateway]) -> None:
    _, gateway = cohere
    stream = gateway.openai().chat.completions.create(
        model="co/command-r+stream_error=1", messages=HI, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
