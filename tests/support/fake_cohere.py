"""A loopback fake of Cohere's v2 API: POST /v2/chat (JSON, or SSE events with `stream`) and
POST /v2/embed.

Every call needs `Authorization: Bearer <FAKE_COHERE_KEY>` (default "co-fake-key"), else 401.
Bodies are checked as the API does: known top-level fields only (Cohere names top_p `p`),
roles system/user/assistant/tool, a tool message's `tool_call_id` answering an earlier call,
tools as `{"type": "function", "function": {...}}`, `tool_choice` REQUIRED/NONE, and for embed
`texts`, `input_type` and `embedding_types`. Errors are `{"message": ...}` with the status.
Knobs on the model name (`command-r+status=429`): `status=N` (`retry_after=S` adds
Retry-After), `message=...`, `reply=TEXT`, `echo=1`, `stream_error=1` (a message-end carrying
an error). Tools in the request (tool_choice not NONE, last message not a tool result) make the
reply a call of the first tool. Test routes: /_requests, /_counts as in `fake_openai`.
"""

from __future__ import annotations

import os
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

_CHAT = {"model", "messages", "stream", "tools", "tool_choice", "max_tokens", "temperature",
         "p", "k", "seed", "stop_sequences", "frequency_penalty", "presence_penalty",
         "response_format", "documents", "citation_options", "safety_mode", "strict_tools",
         "logprobs"}
_EMBED = {"model", "texts", "images", "inputs", "input_type", "embedding_types",
          "output_dimension", "truncate", "max_tokens"}
_INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}


def _error(message: str) -> bytes:
    return orjson.dumps({"id": "err-fake", "message": message})


def _chat_invalid(body: dict[str, Any]) -> str | None:
    unknown = set(body) - _CHAT
    if unknown:
        return f"invalid request: unknown field: parameter {sorted(unknown)[0]} is not a " \
               "valid field"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must not be empty"
    called: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            return f"invalid request: invalid role {role!r}"
        for call in message.get("tool_calls") or ():
            if call.get("type") != "function" or not isinstance(
                    call.get("function", {}).get("arguments"), str):
                return "invalid request: tool_calls must be functions with string arguments"
            called.add(call.get("id"))
        if role == "tool" and message.get("tool_call_id") not in called:
            return "invalid request: tool message does not answer a tool call"
        if role in ("system", "user") and not message.get("content"):
            return f"invalid request: {role} message must have content"
    for tool in body.get("tools") or ():
        if tool.get("type") != "function" or not tool.get("function", {}).get("name"):
            return "invalid request: tools must be {type: function, function: {name, ...}}"
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        return "invalid request: tool_choice must be REQUIRED or NONE"
    return None


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    if not tools or body.get("tool_choice") == "NONE" or body["messages"][-1]["role"] == "tool":
        return None
    return {"id": "get_weather_fake01", "type": "function",
            "function": {"name": tools[0]["function"]["name"], "arguments": '{"city":"Paris"}'}}


def _text(body: dict[str, Any], k: dict[str, str]) -> str:
    if not k.get("echo"):
        return k.get("reply", DEFAULT_REPLY)
    content = body["messages"][-1].get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return str(content)


def _input_words(body: dict[str, Any]) -> int:
    total = 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        total += words(content or "")
    return total


def _usage(body: dict[str, Any], out: int) -> dict[str, Any]:
    counts = {"input_tokens": _input_words(body), "output_tokens": out}
    return {"billed_units": counts, "tokens": counts}


def _events(body: dict[str, Any], text: str, k: dict[str, str]
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    call = _tool_call(body)
    yield "message-start", {"type": "message-start", "id": "co-fake-01", "delta": {"message": {
        "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}
    if call is not None:
        yield "tool-plan-delta", {"type": "tool-plan-delta",
                                  "delta": {"message": {"tool_plan": "I will look it up."}}}
        start = {**call, "function": {**call["function"], "arguments": ""}}
        yield "tool-call-start", {"type": "tool-call-start", "index": 0,
                                  "delta": {"message": {"tool_calls": start}}}
        for piece in ('{"city"', ':"Paris"}'):
            yield "tool-call-delta", {"type": "tool-call-delta", "index": 0, "delta": {
                "message": {"tool_calls": {"function": {"arguments": piece}}}}}
        yield "tool-call-end", {"type": "tool-call-end", "index": 0}
        finish, out = "TOOL_CALL", 5
    else:
        yield "content-start", {"type": "content-start", "index": 0, "delta": {
            "message": {"content": {"type": "text", "text": ""}}}}
        for i, word in enumerate(text.split(" ")):
            yield "content-delta", {"type": "content-delta", "index": 0, "delta": {
                "message": {"content": {"text": word if i == 0 else " " + word}}}}
        yield "content-end", {"type": "content-end", "index": 0}
        finish, out = "COMPLETE", words(text)
    end: dict[str, Any] = {"finish_reason": finish, "usage": _usage(body, out)}
    if k.get("stream_error"):
        end = {"finish_reason": "ERROR", "error": "internal error while generating"}
    yield "message-end", {"type": "message-end", "delta": end}


async def _chat(send: Send, body: dict[str, Any], k: dict[str, str]) -> None:
    problem = _chat_invalid(body)
    if problem:
        await _send_json(send, 400, _error(problem))
        return
    text = _text(body, k)
    if body.get("stream"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for name, data in _events(body, text, k):
            await send({"type": "http.response.body", "more_body": True,
                        "body": f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"})
        await send({"type": "http.response.body", "body": b""})
        return
    call = _tool_call(body)
    message: dict[str, Any] = {"role": "assistant"}
    if call is not None:
        message.update(tool_plan="I will look it up.", tool_calls=[call])
    else:
        message["content"] = [{"type": "text", "text": text}]
    await _send_json(send, 200, orjson.dumps({
        "id": "co-fake-01", "message": message,
        "finish_reason": "TOOL_CALL" if call else "COMPLETE",
        "usage": _usage(body, 5 if call else words(text))}))


async def _embed(send: Send, body: dict[str, Any]) -> None:
    unknown = set(body) - _EMBED
    texts = body.get("texts")
    if unknown:
        problem = f"invalid request: unknown field: parameter {sorted(unknown)[0]}"
    elif body.get("input_type") not in _INPUT_TYPES:
        problem = "invalid request: input_type is required for embed-v3 and newer models"
    elif not isinstance(texts, list) or not texts:
        problem = "invalid request: texts must be a non-empty list"
    elif not body.get("embedding_types"):
        problem = "invalid request: embedding_types is required"
    else:
        problem = ""
    if problem:
        await _send_json(send, 400, _error(problem))
        return
    size = int(body.get("output_dimension") or 6)
    vectors = {kind: [[round(len(t) / 100 + j / 1000, 6) if kind == "float" else len(t) + j
                       for j in range(size)] for t in texts]
               for kind in body["embedding_types"]}
    await _send_json(send, 200, orjson.dumps({
        "id": "emb-fake-01", "embeddings": vectors, "texts": texts,
        "meta": {"api_version": {"version": "2"},
                 "billed_units": {"input_tokens": sum(words(t) for t in texts)}},
        "response_type": "embeddings_by_type"}))


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    body = orjson.loads(await _read_body(receive) or b"{}")
    _, k, _ = record(scope, body)
    body["model"] = str(body.get("model", "")).split("+")[0]
    key = os.environ.get("FAKE_COHERE_KEY", "co-fake-key")
    if headers_of(scope).get("authorization") != f"Bearer {key}":
        await _send_json(send, 401, _error("invalid api token"))
        return
    if k.get("status"):
        headers = [(b"retry-after", k["retry_after"].encode())] if "retry_after" in k else []
        await _send_json(send, int(k["status"]), _error(k.get("message", "fake failure")),
                         headers)
        return
    if scope["path"] == "/v2/chat":
        await _chat(send, body, k)
    elif scope["path"] == "/v2/embed":
        await _embed(send, body)
    else:
        await _send_json(send, 404, _error(f"no route {scope['path']}"))


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Cohere v2 API")
