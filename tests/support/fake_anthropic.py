"""A loopback fake of Anthropic's Messages API (POST /v1/messages), JSON and SSE.

It checks the request the way the real API does (x-api-key, anthropic-version, max_tokens,
roles alternating and starting with user, known content block types) and answers 400/401 with
Anthropic's error body when something is off. Knobs as in `fake_openai` (`+key=value` on the
model name or an `x-fake` header): `delay`, `status`, `message`, `reply`, `echo`, plus
`overloaded=1` (HTTP 529 overloaded_error), `overloaded_mid_stream=1` (an error event after
the first text), `error=context_length` ("prompt is too long"). Tools in the request make the
reply a `tool_use` block for the first (or the chosen) tool. Test routes: /_requests, /_counts.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import orjson

from tests.support.fake_openai import (
    DEFAULT_REPLY,
    Receive,
    Scope,
    Send,
    _read_body,
    _send_json,
    control,
    headers_of,
    record,
    serve,
    tracking,
    words,
)

_BLOCKS = {"text", "image", "tool_use", "tool_result"}


def error(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def invalid(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes] | None:
    if not headers.get("x-api-key"):
        return 401, error("authentication_error", "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return 400, error("invalid_request_error", "anthropic-version header is required")
    if not isinstance(body.get("max_tokens"), int):
        return 400, error("invalid_request_error", "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        return 400, error("invalid_request_error", "messages: the first message must be a user's")
    for prev, msg in itertools.pairwise(messages):
        if prev.get("role") == msg.get("role"):
            return 400, error("invalid_request_error", "roles must alternate")
    for msg in messages:
        if msg.get("role") not in ("user", "assistant"):
            return 400, error("invalid_request_error", f"unexpected role {msg.get('role')}")
        content = msg.get("content")
        if isinstance(content, list) and any(b.get("type") not in _BLOCKS for b in content):
            return 400, error("invalid_request_error", "unknown content block type")
    return None


def _tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice") or {}
    last = body["messages"][-1].get("content")
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    if not tools or choice.get("type") == "none" or answered:
        return None
    name = choice.get("name") if choice.get("type") == "tool" else tools[0]["name"]
    return {"type": "tool_use", "id": "toolu_fake01", "name": name, "input": {"city": "Paris"}}


def _input_words(body: dict[str, Any]) -> int:
    total = words(body.get("system") or "")
    for msg in body["messages"]:
        content = msg["content"]
        if isinstance(content, str):
            total += words(content)
        else:
            total += sum(words(b.get("text", "")) for b in content)
    return total


def _text_of_last_user(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if b.get("type") == "text")


def _events(body: dict[str, Any], model: str, text: str,
            k: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    usage = {"input_tokens": _input_words(body), "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": {
        "id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "usage": usage}}
    yield "ping", {"type": "ping"}
    tool = _tool_use(body)
    if tool is not None:
        yield "content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {**tool, "input": {}}}
        for part in ('{"city": ', '"Paris"}'):
            yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "input_json_delta",
                                                    "partial_json": part}}
        stop, out = "tool_use", 5
    else:
        yield "content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}}
        for i, word in enumerate(text.split(" ")):
            yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta",
                                                    "text": word if i == 0 else " " + word}}
            if k.get("overloaded_mid_stream"):
                yield "error", {"type": "error", "error": {"type": "overloaded_error",
                                                           "message": "Overloaded"}}
                return
        stop, out = "end_turn", words(text)
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop,
                                                               "stop_sequence": None},
                            "usage": {"output_tokens": out}}
    yield "message_stop", {"type": "message_stop"}


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    body = orjson.loads(await _read_body(receive) or b"{}")
    model, k, _ = record(scope, body)
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if scope["path"] != "/v1/messages":
        await _send_json(send, 404, error("not_found_error", "Not found"))
        return
    problem = invalid(body, headers_of(scope))
    if k.get("overloaded"):
        problem = 529, error("overloaded_error", "Overloaded")
    elif k.get("error") == "context_length":
        problem = 400, error("invalid_request_error",
                             "prompt is too long: 210000 tokens > 200000 maximum")
    elif k.get("status"):
        problem = int(k["status"]), error("api_error", k.get("message", "fake failure"))
    if problem:
        await _send_json(send, *problem)
        return
    text = _text_of_last_user(body) if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    if body.get("stream"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for name, data in _events(body, model, text, k):
            await send({"type": "http.response.body", "more_body": True,
                        "body": f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"})
        await send({"type": "http.response.body", "body": b""})
        return
    tool = _tool_use(body)
    content = [tool] if tool else [{"type": "text", "text": text}]
    await _send_json(send, 200, orjson.dumps({
        "id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": _input_words(body), "output_tokens": 5 if tool else words(text),
                  "cache_read_input_tokens": 0}}))


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Anthropic Messages API")
