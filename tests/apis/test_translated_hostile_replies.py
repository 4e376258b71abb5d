"""Chat replies of the wrong shape, byte for byte from a raw loopback upstream, through a real
gateway process on the translated routes (`/v1/responses`, `/v1/messages`): a reply the
translation cannot read is a 502 naming the upstream, in the route's own error shape; a
stream that turns bad ends with the route's failure events. Never a 500, a dropped keep-alive
connection, or the gateway's own "stream failed"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.fake_raw import RawUpstream, http_response, wildcard_config
from tests.support.gateway import Gateway, clean_env, start_gateway

HEAD = {"id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": "m"}
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
HELLO = {"role": "assistant", "content": "Hello world"}
ROUTES = {
    "/v1/responses": {"input": "hi"},
    "/v1/messages": {"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
}


def completion(message: Any = HELLO, **fields: Any) -> dict[str, Any]:
    return {**HEAD, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE, **fields}


def chunk(delta: Any, **fields: Any) -> dict[str, Any]:
    return {**HEAD, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}], **fields}


def sse(*events: dict[str, Any]) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    return http_response(200, body + b"data: [DONE]\n\n", content_type="text/event-stream")


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    with RawUpstream() as upstream:
        upstream.script("fine", http_response(200, completion()))
        yield upstream


@pytest.fixture(scope="module")
def gateway(raw: RawUpstream) -> Iterator[Gateway]:
    config = wildcard_config(raw, "hosted_vllm", "sk-hostile-api-0123456789")
    # One request at a time: a reply the translation fails on must still give its slot back,
    # or the next request (`still_serves`) would wait for it.
    config["model_list"][0]["litellm_params"]["max_parallel_requests"] = 1
    # A slot left behind would come back only when its lease runs out, long after the next
    # request has given up waiting.
    config["router_settings"].update(timeout=5, queue_lease_seconds=30)
    gw = start_gateway(config, clean_env())
    yield gw
    gw.stop()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as c:
        yield c


def post(client: httpx.Client, path: str, model: str, stream: bool) -> httpx.Response:
    return client.post(path, json={"model": f"hostile/{model}", "stream": stream, **ROUTES[path]})


def error_message(path: str, body: dict[str, Any]) -> str:
    """The message of an error body in the route's shape (OpenAI's or Anthropic's)."""
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "api_error", body
        return str(body["error"]["message"])
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return str(body["error"]["message"])


def still_serves(client: httpx.Client, path: str) -> None:
    """The same keep-alive connection answers the next request, which the one slot serves."""
    assert post(client, path, "fine", False).status_code == 200


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(("name", "reply"), [
    ("message-string", completion("hello")),
    ("message-list", completion([1])),
    ("tool-calls-string", completion({"role": "assistant", "content": None,
                                      "tool_calls": "call me"})),
    ("tool-call-function-string", completion({"role": "assistant", "content": None,
                                              "tool_calls": [{"id": "c", "function": "f"}]})),
    ("usage-counts-absurd", completion(usage={"prompt_tokens": 1e300})),
])
def test_a_reply_of_the_wrong_shape_is_a_502_naming_the_upstream(
        client: httpx.Client, raw: RawUpstream, path: str, name: str, reply: dict[str, Any]
) -> None:
    raw.script(name, http_response(200, reply))
    resp = post(client, path, name, False)
    assert resp.status_code == 502, resp.text
    message = error_message(path, resp.json())
    assert f"hosted_vllm/{name}" in message and "sk-hostile" not in message
    still_serves(client, path)


@pytest.mark.parametrize("path", list(ROUTES))
def test_odd_fields_the_reply_can_do_without_still_answer(client: httpx.Client,
                                                          raw: RawUpstream, path: str) -> None:
    """An absurd timestamp is replaced by the gateway's clock, unreadable usage details
    (cached tokens) count as none: the answer itself is fine."""
    raw.script("odd", http_response(200, completion(created=1e300, usage={
        **USAGE, "prompt_tokens_details": "many", "completion_tokens_details": [1e300]})))
    resp = post(client, path, "odd", False)
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    if path == "/v1/responses":
        assert 0 < reply["created_at"] < 2**53
        assert reply["usage"]["input_tokens_details"] == {"cached_tokens": 0}
    else:
        assert reply["usage"]["cache_read_input_tokens"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_name_that_is_not_a_string_is_not_copied(client: httpx.Client,
                                                         raw: RawUpstream, stream: bool) -> None:
    """Here JSON nested deeper than the encoder writes (it reads deeper): copied into the
    response object, it could not have been sent, not even in the failure events."""
    deep = b"[" * 300 + b"]" * 300
    if stream:
        event = (b'data: {"id":"c","object":"chat.completion.chunk","model":' + deep
                 + b',"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}'
                 + b"\n\ndata: [DONE]\n\n")
        reply = http_response(200, event, content_type="text/event-stream")
    else:
        reply = http_response(200, orjson.dumps(completion(model="x"))
                              .replace(b'"model":"x"', b'"model":' + deep))
    raw.script(f"deep-model-{stream}", reply)
    resp = post(client, "/v1/responses", f"deep-model-{stream}", stream)
    assert resp.status_code == 200, resp.text
    final = events_of(resp)[-1]["response"] if stream else resp.json()
    assert final["status"] == "completed" and final["model"] == f"hostile/deep-model-{stream}"
    still_serves(client, "/v1/responses")


def events_of(resp: httpx.Response) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in resp.text.splitlines()
            if line.startswith("data: ")]


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(("name", "events"), [
    ("delta-string", [chunk({"content": "Hi"}), chunk("there")]),
    ("tool-call-index-list", [chunk({"tool_calls": [{"index": [1], "id": "a", "function": {
        "name": "f", "arguments": "{}"}}]})]),
    ("usage-string", [chunk({"content": "Hi"}), {**HEAD, "choices": [], "usage": "lots"}]),
])
def test_a_stream_that_turns_bad_ends_with_the_routes_failure(
        client: httpx.Client, raw: RawUpstream, path: str, name: str,
        events: list[dict[str, Any]]) -> None:
    raw.script(name, sse(*events))
    resp = post(client, path, name, True)
    assert resp.status_code == 200
    sent = events_of(resp)
    if path == "/v1/responses":
        assert [e["type"] for e in sent[-2:]] == ["error", "response.failed"]
        message = sent[-2]["message"]
    else:
        message = error_message(path, sent[-1])
    assert f"hosted_vllm/{name}" in message and "stream failed" not in message
    still_serves(client, path)
