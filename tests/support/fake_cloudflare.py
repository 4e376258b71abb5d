"""A loopback fake Cloudflare Workers AI: POST /client/v4/accounts/<account>/ai/run/<model>.

Authentication: `Authorization: Bearer <FAKE_CLOUDFLARE_API_KEY>` (default "cf-fake-key"), else
Cloudflare's 401 `{"errors": [{"code": 10000, "message": "Authentication error"}]}`. Text
models take `messages` (role/content strings) or `prompt` and the documented options, any other
key is a 400 (code 5006); they answer `{"result": {"response", "usage"}, "success": true}` or,
with `"stream": true`, SSE `data: {"response": "..."}` events, a last one with `usage`, then
`data: [DONE]`. Models named `*bge*` are embedding models: `{"text": [...]}` → `result.shape`
and `result.data`. Knobs in the model name (`+key=value`): `throttle=1` (429, code 3040),
`retry_after=S`, `status=N` (code 3043), `error=context_length` (400, code 5021),
`soft_error=1` (HTTP 200 carrying `success: false`), `echo=1`, `reply=TEXT`. Recorded requests
carry `account` and `cf_model`.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

import orjson

from tests.support.fake_openai import (
    DEFAULT_REPLY,
    STATE,
    Receive,
    Scope,
    Send,
    _read_body,
    _send_json,
    control,
    headers_of,
    last_user_text,
    record,
    serve,
    tracking,
    words,
)

_ROUTE = re.compile(r"^/client/v4/accounts/([^/]+)/ai/run/(.+)$")
_OPTIONS = {"messages", "prompt", "stream", "max_tokens", "temperature", "top_p", "top_k",
            "seed", "repetition_penalty", "frequency_penalty", "presence_penalty", "raw", "lora",
            "tools", "functions", "response_format"}


def _envelope(result: Any = None, errors: list[dict[str, Any]] | None = None) -> bytes:
    return orjson.dumps({"result": result, "success": not errors, "errors": errors or [],
                         "messages": []})


async def _error(send: Send, status: int, code: int, message: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send_json(send, status, _envelope(errors=[{"code": code, "message": message}]),
                     extra)


def _invalid(body: dict[str, Any]) -> str | None:
    unknown = set(body) - _OPTIONS
    if unknown:
        return f"Error: additionalProperties not allowed: '{sorted(unknown)[0]}'"
    if ("messages" in body) == ("prompt" in body):
        return "Error: oneOf at '/' not met, 0 matches: required properties at '/' are 'prompt'"
    for msg in body.get("messages") or []:
        if not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
            return "Error: Type mismatch of '/messages/0/content', 'array' not in 'string'"
    return None


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    raw = await _read_body(receive)
    match = _ROUTE.match(scope["raw_path"].decode())
    if not match or scope["method"] != "POST":
        await _error(send, 404, 7003, "Could not route to /client/v4, perhaps your object "
                                      "identifier is invalid?")
        return
    account, model_full = unquote(match.group(1)), unquote(match.group(2))
    body = orjson.loads(raw or b"{}")
    model, k, _ = record(scope, body, model=model_full)
    STATE.requests[-1].update(account=account, cf_model=model)
    key = os.environ.get("FAKE_CLOUDFLARE_API_KEY", "cf-fake-key")
    if headers_of(scope).get("authorization") != f"Bearer {key}":
        await _error(send, 401, 10000, "Authentication error")
        return
    if k.get("throttle") or "retry_after" in k:
        extra = [(b"retry-after", k["retry_after"].encode())] if "retry_after" in k else []
        await _error(send, 429, 3040, "Capacity temporarily exceeded, please try again.", extra)
        return
    if k.get("status"):
        await _error(send, int(k["status"]), 3043, "Internal server error")
        return
    if k.get("error") == "context_length":
        await _error(send, 400, 5021, "AiError: AiError: The input is too long for the model's "
                                      "context window (7c0a0f4e)")
        return
    if k.get("soft_error"):
        await _send_json(send, 200, _envelope(errors=[{"code": 3010, "message": "Invalid or "
                                                       "incomplete input for the model"}]))
        return
    if "bge" in model:
        texts = body.get("text")
        texts = [texts] if isinstance(texts, str) else texts
        if set(body) != {"text"} or not isinstance(texts, list):
            await _error(send, 400, 5006, "Error: required properties at '/' are 'text'")
            return
        data = [[len(t) / 10, 0.5, 0.25] for t in texts]
        await _send_json(send, 200, _envelope({"shape": [len(data), 3], "data": data,
                                               "pooling": "mean"}))
        return
    problem = _invalid(body)
    if problem:
        await _error(send, 400, 5006, problem)
        return
    text = (last_user_text(body) if k.get("echo") else k.get("reply", DEFAULT_REPLY))
    prompt_tokens = words(body.get("prompt") or [m["content"] for m in body["messages"]])
    used = {"prompt_tokens": prompt_tokens, "completion_tokens": words(text),
            "total_tokens": prompt_tokens + words(text)}
    if not body.get("stream"):
        await _send_json(send, 200, _envelope({"response": text, "tool_calls": [],
                                               "usage": used}))
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for i, word in enumerate(text.split(" ")):
        event = {"response": word if i == 0 else " " + word, "p": "abcdefgh"[: i + 1]}
        await send({"type": "http.response.body", "more_body": True,
                    "body": b"data: " + orjson.dumps(event) + b"\n\n"})
    await send({"type": "http.response.body", "more_body": True,
                "body": b"data: " + orjson.dumps({"response": "", "usage": used}) + b"\n\n"})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Cloudflare Workers AI")
