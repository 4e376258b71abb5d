"""`client.messages.create` with the official `anthropic` SDK against a real gateway: passed
through to an Anthropic upstream, translated for an OpenAI-compatible and a Bedrock one."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.apis.conftest import ANTHROPIC_KEY, UPSTREAMS, anthropic_client
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_create_answers_with_text_and_usage(gw: Gateway, model: str) -> None:
    raw = anthropic_client(gw).messages.with_raw_response.create(
        model=model, max_tokens=100, system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}])
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and "Hello" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert raw.headers["x-laneway-model-group"] == model


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_sends_anthropic_events(gw: Gateway, model: str) -> None:
    client = anthropic_client(gw)
    with client.messages.stream(model=model, max_tokens=100,
                                messages=[{"role": "user", "content": "Say hello"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert {"content_block_start", "content_block_delta", "content_block_stop",
            "message_delta", "message_stop"} <= set(kinds)
    assert "Hello" in final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_use_round_trip(gw: Gateway, model: str) -> None:
    client = anthropic_client(gw)
    ask = {"role": "user", "content": "Weather in Paris?"}
    first = client.messages.create(model=model, max_tokens=100, tools=TOOLS, messages=[ask])
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict)
    second = client.messages.create(model=model, max_tokens=100, tools=TOOLS, messages=[
        ask, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "sunny, 21C"}]}])
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"


@pytest.mark.parametrize("model", ("compat", "claude"))
def test_streamed_tool_use_sends_input_json_deltas(gw: Gateway, model: str) -> None:
    client = anthropic_client(gw)
    with client.messages.stream(model=model, max_tokens=100, tools=TOOLS,
                                messages=[{"role": "user", "content": "Weather?"}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert any(d.delta.type == "input_json_delta" for d in deltas)
    [use] = [b for b in final.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict)
    assert final.stop_reason == "tool_use"


def test_anthropic_upstream_gets_the_request_as_sent(gw: Gateway, fake_anthropic: FakeUpstream
                                                     ) -> None:
    anthropic_client(gw).messages.create(
        model="claude", max_tokens=64, system=[{"type": "text", "text": "Be brief.",
                                                "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}], metadata={"user_id": "u-1"},
        extra_body={"priority": 1})
    sent = fake_anthropic.requests()[-1]
    assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["body"]["model"] == "claude-fake" and "priority" not in sent["body"]
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY  # the gateway's, not the client's


def test_translated_request_reaches_chat_upstream(gw: Gateway, fake_openai: FakeUpstream
                                                  ) -> None:
    anthropic_client(gw).messages.create(
        model="compat", max_tokens=64, system="Be brief.", stop_sequences=["END"],
        metadata={"user_id": "u-7"},
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}]}])
    sent = [r for r in fake_openai.requests() if r["path"] == "/v1/chat/completions"
            and r["body"]["model"] == "compat-fake"][-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["messages"][1]["content"][1] == {
        "type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert sent["stop"] == ["END"] and sent["user"] == "u-7" and sent["max_tokens"] == 64


def test_count_tokens(gw: Gateway) -> None:
    client = anthropic_client(gw)
    short = client.messages.count_tokens(model="claude",
                                         messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(
        model="claude", system="You are a careful assistant.",
        messages=[{"role": "user", "content": "hi " * 50}])
    assert 0 < short.input_tokens < long.input_tokens


def test_errors_have_anthropics_shape(gw: Gateway) -> None:
    client = anthropic_client(gw)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="compat", max_tokens=0,
                               messages=[{"role": "user", "content": "hi"}])
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nope", max_tokens=10,
                               messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    resp = httpx.post(f"{gw.url}/v1/messages", content=b"{", headers={"x-api-key": gw.key or ""})
    assert resp.status_code == 400
    assert resp.json()["type"] == "error"
    # Anything a translation cannot carry is a 400 naming it.
    with pytest.raises(anthropic.BadRequestError) as tool:
        client.messages.create(model="compat", max_tokens=10,
                               tools=[{"type": "web_search_20250305", "name": "web_search"}],
                               messages=[{"role": "user", "content": "hi"}])
    assert "tools[0]" in tool.value.message


def test_upstream_errors_keep_their_status(gw: Gateway) -> None:
    client = anthropic_client(gw)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="claude", max_tokens=10, messages=[
            {"role": "user", "content": [{"type": "document", "source": {}}]}])
    assert bad.value.body["type"] == "error"  # type: ignore[index]


@pytest.mark.parametrize("model", ["claude-breaks", "compat-breaks"])
def test_a_stream_that_breaks_ends_with_an_error_event(gw: Gateway, model: str) -> None:
    client = anthropic_client(gw)
    seen: list[str] = []
    # The SDK raises on `event: error`.
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(
            model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        for event in stream:
            seen.append(event.type)
    assert seen[0] == "message_start" and "content_block_delta" in seen
    assert info.value.body["type"] == "error"  # type: ignore[index]


def test_claude_on_bedrock_gets_the_messages_body(gw: Gateway, fake_bedrock: FakeUpstream
                                                  ) -> None:
    client = anthropic_client(gw)
    client.messages.create(model="bedrock", max_tokens=32,
                           messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(model="bedrock", max_tokens=32,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "Hello" in stream.get_final_message().content[0].text
    plain, streamed = fake_bedrock.requests()[-2:]
    assert (plain["action"], streamed["action"]) == ("invoke", "invoke-with-response-stream")
    assert plain["body"]["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in plain["body"] and plain["sigv4"]["service"] == "bedrock"


def test_a_wrong_key_is_refused_in_anthropics_shape(gw: Gateway) -> None:
    import anthropic as sdk

    client = sdk.Anthropic(base_url=gw.url, api_key="sk-not-a-key-0123456789", max_retries=0)
    with pytest.raises(sdk.AuthenticationError) as info:
        client.messages.create(model="claude", max_tokens=10,
                               messages=[{"role": "user", "content": "hi"}])
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
