"""Upstream replies laneway cannot use, byte for byte from a raw loopback upstream, through a
real gateway process: each is a 502 (or the status the upstream's error names) with an OpenAI
error body — never a 500, a dropped connection or a hang."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from tests.support.fake_raw import RawUpstream, http_response, wildcard_config
from tests.support.gateway import Gateway, clean_env, start_gateway

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    with RawUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gateway(raw: RawUpstream) -> Iterator[Gateway]:
    gw = start_gateway(wildcard_config(raw, "openai", "sk-hostile-test-0123456789"), clean_env())
    yield gw
    gw.stop()


def post(gw: Gateway, model: str, *, stream: bool = False, path: str = "chat/completions"
         ) -> httpx.Response:
    body: dict = {"model": f"hostile/{model}", "stream": stream}
    if path == "completions":
        body["prompt"] = "hi"
    else:
        body["messages"] = [{"role": "user", "content": "hi"}]
    with gw.client() as client:
        return client.post(f"/v1/{path}", json=body)


def assert_error(resp: httpx.Response, status: int, *words: str) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"], error
    return error


COMPLETION = {"id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "Hello world"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.mark.parametrize(("name", "reply", "status", "words"), [
    ("bad-json", http_response(200, b"{not json"), 502, ["invalid JSON"]),
    ("array", http_response(200, [1, 2]), 502, ["not an object", "list"]),
    ("number", http_response(200, b"42"), 502, ["not an object", "int"]),
    ("string", http_response(200, b'"hello"'), 502, ["not an object", "str"]),
    ("empty-204", http_response(204, b""), 502, ["invalid JSON"]),
    ("error-200", http_response(200, {"error": {"message": "model melted", "code": "oops"}}),
     502, ["model melted"]),
    ("error-200-429", http_response(200, {"error": {"message": "slow down", "code": 429}}),
     429, ["slow down"]),
    ("error-200-str", http_response(200, {"error": {"message": "bad", "code": "503"}}),
     503, ["bad"]),
    ("redirect", http_response(302, b"", headers="location: http://127.0.0.1:1/\r\n"),
     502, ["HTTP 302", "redirect"]),
    ("status-600", http_response(600, {"error": {"message": "six hundred"}}), 502,
     ["HTTP status 600"]),
    ("status-999", http_response(999, b"nope"), 502, ["HTTP status 999"]),
    ("status-000", http_response("000", b"{}"), 502, ["HTTP status 0"]),
    ("status-99", http_response(99, b"{}"), 502, ["invalid HTTP response"]),
    ("not-http", b"SSH-2.0-OpenSSH_9.6\r\n", 502, ["invalid HTTP response"]),
    ("usage-strings", http_response(200, {**COMPLETION, "usage": {"prompt_tokens": "lots"}}),
     502, ["usage.prompt_tokens"]),
    ("choices-dict", http_response(200, {**COMPLETION, "choices": {"0": {}}}), 502,
     ["choices is a dict"]),
])
def test_unusable_reply_is_a_clean_error(gateway: Gateway, raw: RawUpstream, name: str,
                                         reply: bytes, status: int, words: list[str]) -> None:
    raw.script(name, reply)
    error = assert_error(post(gateway, name), status, *words)
    assert "sk-hostile" not in error["message"]


def test_the_sdk_sees_an_api_error_for_a_status_999(gateway: Gateway, raw: RawUpstream) -> None:
    raw.script("sdk-999", http_response(999, b"what"))
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai().chat.completions.create(
            model="hostile/sdk-999", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502


def test_an_interim_100_continue_is_skipped(gateway: Gateway, raw: RawUpstream) -> None:
    raw.script("continue", b"HTTP/1.1 100 Continue\r\n\r\n" + http_response(200, COMPLETION))
    reply = gateway.openai().chat.completions.create(
        model="hostile/continue", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello world"


def test_stream_answered_with_a_json_completion_is_relayed_as_a_stream(
        gateway: Gateway, raw: RawUpstream) -> None:
    raw.script("json-stream", http_response(200, COMPLETION))
    stream = gateway.openai().chat.completions.create(
        model="hostile/json-stream", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5


def test_text_stream_answered_with_json_is_relayed_as_a_stream(
        gateway: Gateway, raw: RawUpstream) -> None:
    raw.script("json-text", http_response(200, {
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "text": "once upon", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}))
    stream = gateway.openai().completions.create(model="hostile/json-text", prompt="hi",
                                                 stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "once upon"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


@pytest.mark.parametrize(("name", "reply", "status"), [
    ("stream-error-200", http_response(200, {"error": {"message": "no stream for you"}}), 502),
    ("stream-error-401", http_response(200, {"error": {"message": "who", "code": 401}}), 401),
    ("stream-999", http_response(999, b"nope"), 502),
    ("stream-redirect", http_response(307, b""), 502),
    ("stream-not-json", http_response(200, b"data: {oops\n\n", content_type="text/event-stream"),
     502),
    ("stream-array", http_response(200, b"data: [1]\n\n", content_type="text/event-stream"), 502),
    ("stream-choices", http_response(200, b'data: {"choices": 5}\n\n',
                                     content_type="text/event-stream"), 502),
])
def test_stream_request_with_an_unusable_reply(gateway: Gateway, raw: RawUpstream, name: str,
                                               reply: bytes, status: int) -> None:
    raw.script(name, reply)
    assert_error(post(gateway, name, stream=True), status)


def test_bad_event_after_the_first_chunk_is_an_error_event(gateway: Gateway,
                                                           raw: RawUpstream) -> None:
    good = orjson.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                         "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    raw.script("late-bad", http_response(
        200, b"data: " + good + b"\r\rdata: {\"usage\": \"all of it\"}\r\r",
        content_type="text/event-stream"))
    resp = post(gateway, "late-bad", stream=True)
    assert resp.status_code == 200
    events = [e for e in resp.text.split("\n\n") if e]
    assert orjson.loads(events[0][6:])["choices"][0]["delta"]["content"] == "Hi"
    last = orjson.loads(events[-1][6:])
    assert last["error"]["code"] == "502" and "usage" in last["error"]["message"]


async def _endless_event(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                 b"connection: close\r\n\r\ndata: ")
    piece = b"x" * MIB
    for _ in range(80):  # more than the 64 MiB default, and never a blank line
        writer.write(piece)
        await writer.drain()


async def _endless_body(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                 b"connection: close\r\n\r\n[")
    piece = b"1," * (MIB // 2)
    for _ in range(80):
        writer.write(piece)
        await writer.drain()


def test_oversized_replies_are_502_not_unbounded_memory(gateway: Gateway,
                                                        raw: RawUpstream) -> None:
    raw.script("huge-declared", b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                b"content-length: 1099511627776\r\n\r\n{")
    raw.script("huge-body", _endless_body)
    raw.script("huge-event", _endless_event)
    for name, stream in (("huge-declared", False), ("huge-body", False), ("huge-event", True)):
        error = assert_error(post(gateway, name, stream=stream), 502, "larger than 67108864")
        assert error["code"] == "response_too_large"
