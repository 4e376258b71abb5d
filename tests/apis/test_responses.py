"""`client.responses.create` with the official `openai` SDK against a real gateway, for an
upstream that speaks the Responses API (passed through) and three that do not (translated)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.apis.conftest import UPSTREAMS
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway

TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_create_answers_with_text_and_usage(gw: Gateway, model: str) -> None:
    resp = gw.openai().responses.with_raw_response.create(
        model=model, input="Say hello", instructions="Be brief.")
    response = resp.parse()
    assert response.object == "response"
    assert response.status == "completed"
    assert "Hello" in response.output_text or "hello" in response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    assert resp.headers["x-laneway-model-group"] == model


@pytest.mark.parametrize("model", UPSTREAMS)
def test_stream_sends_the_semantic_events(gw: Gateway, model: str) -> None:
    events = list(gw.openai().responses.create(model=model, input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert "response.output_item.added" in kinds
    assert "response.output_text.delta" in kinds
    assert "response.output_item.done" in kinds
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == text and text
    assert final.usage.output_tokens > 0
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_function_tool_round_trip(gw: Gateway, model: str) -> None:
    client = gw.openai()
    first = client.responses.create(model=model, input="Weather in Paris?", tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id
    second = client.responses.create(
        model=model, tools=TOOLS,
        input=[{"role": "user", "content": "Weather in Paris?"},
               {"type": "function_call", "call_id": call.call_id, "name": call.name,
                "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id,
                "output": "sunny, 21C"}])
    assert second.output_text  # answered in words now that the tool's result is in
    assert not [item for item in second.output if item.type == "function_call"]


@pytest.mark.parametrize("model", ("compat", "claude"))
def test_streamed_function_call_arguments(gw: Gateway, model: str) -> None:
    events = list(gw.openai().responses.create(model=model, input="Weather?", tools=TOOLS,
                                               stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    [item] = [i for i in events[-1].response.output if i.type == "function_call"]
    deltas = "".join(e.delta for e in events
                     if e.type == "response.function_call_arguments.delta")
    assert item.arguments == deltas and item.name == "get_weather"


def test_translated_request_reaches_chat_upstream(gw: Gateway, fake_openai: FakeUpstream
                                                  ) -> None:
    gw.openai().responses.create(
        model="compat", instructions="Answer in French.", max_output_tokens=50,
        temperature=0.5, input=[{"role": "user", "content": [
            {"type": "input_text", "text": "Describe"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}],
        text={"format": {"type": "json_schema", "name": "answer",
                         "schema": {"type": "object"}, "strict": True}})
    sent = [r for r in fake_openai.requests() if r["path"] == "/v1/chat/completions"
            and r["body"]["model"] == "compat-fake"][-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert sent["messages"][1]["content"][1]["type"] == "image_url"
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.5
    assert sent["response_format"]["json_schema"]["name"] == "answer"


def test_native_upstream_gets_the_request_as_sent(gw: Gateway, fake_openai: FakeUpstream
                                                  ) -> None:
    gw.openai().responses.create(model="oai", input="hi", extra_body={"priority": 2},
                                 metadata={"k": "v"}, store=False)
    sent = [r for r in fake_openai.requests() if r["path"] == "/v1/responses"][-1]
    assert sent["body"]["model"] == "gpt-fake"
    assert sent["body"]["input"] == "hi" and sent["body"]["metadata"] == {"k": "v"}
    assert "priority" not in sent["body"]  # laneway's own field stays with laneway
    assert sent["headers"]["authorization"] == "Bearer sk-up-1"


@pytest.mark.parametrize("model", ("compat", "claude"))
def test_previous_response_id_continues_the_conversation(
        gw: Gateway, fake_openai: FakeUpstream, model: str) -> None:
    client = gw.openai()
    first = client.responses.create(model=model, input="My name is Ada.",
                                    instructions="Be kind.")
    second = client.responses.create(model=model, input="What is my name?",
                                     previous_response_id=first.id)
    assert second.previous_response_id == first.id
    stored = client.responses.retrieve(second.id)
    assert stored.id == second.id and stored.output_text == second.output_text
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=model, input="again", previous_response_id=first.id)


def test_a_streamed_response_is_stored_before_it_completes(gw: Gateway,
                                                          fake_openai: FakeUpstream) -> None:
    client = gw.openai()
    with client.responses.create(model="compat", input="My name is Ada.", stream=True) as stream:
        for event in stream:
            if event.type == "response.completed":
                # Followed up at once, before the stream has even closed: it must be held.
                first = event.response
                client.responses.create(model="compat", input="What is my name?",
                                        previous_response_id=first.id)
    assert client.responses.retrieve(first.id).output_text == first.output_text
    sent = [r for r in fake_openai.requests() if r["path"] == "/v1/chat/completions"
            and r["body"]["model"] == "compat-fake"][-1]["body"]
    assert sent["messages"][1] == {"role": "assistant", "content": first.output_text}
    unkept = list(client.responses.create(model="compat", input="hi", stream=True,
                                          store=False))[-1].response
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)


def test_follow_up_carries_the_history_upstream(gw: Gateway, fake_openai: FakeUpstream) -> None:
    client = gw.openai()
    first = client.responses.create(model="compat", input="My name is Ada.",
                                    instructions="Be kind.")
    client.responses.create(model="compat", input="What is my name?",
                            previous_response_id=first.id, instructions="Be terse.")
    sent = [r for r in fake_openai.requests() if r["path"] == "/v1/chat/completions"
            and r["body"]["model"] == "compat-fake"][-1]["body"]
    # Instructions are not carried over (OpenAI's rule); the turns are.
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "Be terse."
    assert sent["messages"][1]["content"] == "My name is Ada."
    assert sent["messages"][3]["content"] == "What is my name?"


def test_store_false_keeps_nothing(gw: Gateway) -> None:
    client = gw.openai()
    response = client.responses.create(model="compat", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


@pytest.mark.parametrize(("extra", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"type": "file_search_call", "id": "x"}]}, "input[0].type"),
    ({"background": True}, "background"),
    ({"store": "no"}, "store"),  # not a boolean: not taken for "yes"
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0]"),
])
def test_what_cannot_be_translated_is_a_400_naming_it(gw: Gateway, extra: dict, param: str
                                                      ) -> None:
    body = {"model": "compat", "input": "hi", **extra}
    with gw.client() as http:
        resp = http.post("/v1/responses", json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_a_follow_up_to_an_absurd_id_is_a_404_that_does_not_echo_it(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        gw.openai().responses.create(model="compat", input="hi",
                                     previous_response_id="resp_" + "x" * 100_000)
    body = info.value.body
    assert body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert len(body["message"]) < 300  # type: ignore[index]


def test_unknown_model_and_bad_json_are_openai_errors(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        gw.openai().responses.create(model="nope", input="hi")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]
    resp = httpx.post(f"{gw.url}/responses", content=b"{", headers=gw.headers())
    assert resp.status_code == 400 and "error" in resp.json()


def test_upstream_rate_limit_headers_come_back_prefixed(gw: Gateway) -> None:
    resp = gw.openai().responses.with_raw_response.create(model="oai", input="hi")
    assert resp.headers["llm_provider-x-ratelimit-remaining-requests"] == "99"
    chat = gw.openai().chat.completions.with_raw_response.create(
        model="compat", messages=[{"role": "user", "content": "hi"}])
    assert chat.headers["llm_provider-openai-processing-ms"] == "7"


def test_a_stream_that_breaks_ends_failed(gw: Gateway) -> None:
    events = list(gw.openai().responses.create(model="compat-breaks", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed" and events[-1].response.error.message
