"""A loopback fake Ollama server: /api/chat, /api/generate (NDJSON streams), /api/embed.

Like the real server it streams unless the request says `"stream": false`, wants message
content as a string, and answers errors as `{"error": "..."}`. Knobs as in `fake_openai`
(`+key=value` on the model name): `delay`, `status` (+`message`), `reply`, `echo`,
`missing=1` (404 model not found), `error=context_length` (400 input exceeds the context
length). With `tools`, /api/chat answers with a tool call of the first tool.
/api/generate echoes the prompt it received when `echo=1`, so tests can read it back.
"""

from __future__ import annotations

import asyncio
import time
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
    record,
    serve,
    tracking,
    words,
)

_OPTIONS = {"temperature", "top_p", "top_k", "seed", "stop", "num_predict", "num_ctx",
            "frequency_penalty", "presence_penalty"}


def err(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _invalid(route: str, body: dict[str, Any]) -> str | None:
    if not body.get("model"):
        return "model is required"
    unknown = set(body.get("options") or {}) - _OPTIONS
    if unknown:
        return f"invalid option provided: {sorted(unknown)[0]}"
    if route == "/api/chat":
        for msg in body.get("messages") or []:
            if not isinstance(msg.get("content", ""), str):
                return ("json: cannot unmarshal array into Go struct field "
                        "ChatRequest.messages.content of type string")
    if route == "/api/generate" and not isinstance(body.get("prompt", ""), str):
        return "prompt must be a string"
    return None


def _final(body: dict[str, Any], model: str, text: str) -> dict[str, Any]:
    prompt = body.get("prompt") or " ".join(m.get("content", "") for m in body.get("messages")
                                            or [])
    return {"model": model, "created_at": "2024-01-01T00:00:00Z", "done": True,
            "done_reason": "stop", "prompt_eval_count": words(prompt),
            "eval_count": words(text), "total_duration": 1000}


def _answer(route: str, body: dict[str, Any], k: dict[str, str]) -> tuple[str, dict[str, Any]]:
    if route == "/api/generate":
        return (body["prompt"] if k.get("echo") else k.get("reply", DEFAULT_REPLY)), {}
    messages = body.get("messages") or []
    if body.get("tools") and (not messages or messages[-1].get("role") != "tool"):
        name = body["tools"][0]["function"]["name"]
        return "", {"tool_calls": [{"function": {"name": name,
                                                 "arguments": {"city": "Paris"}}}]}
    text = messages[-1]["content"] if k.get("echo") and messages else k.get("reply",
                                                                          DEFAULT_REPLY)
    return text, {}


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    route = scope["path"]
    if route == "/api/tags":
        await _send_json(send, 200, b'{"models": []}')
        return
    body = orjson.loads(await _read_body(receive) or b"{}")
    model, k, _ = record(scope, body)
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if route not in ("/api/chat", "/api/generate", "/api/embed"):
        await _send_json(send, 404, b"404 page not found")
        return
    problem = _invalid(route, body)
    if problem:
        await _send_json(send, 400, err(problem))
        return
    if k.get("missing"):
        await _send_json(send, 404, err(f'model "{model}" not found, try pulling it first'))
        return
    if k.get("error") == "context_length":
        await _send_json(send, 400, err("input length exceeds the context length"))
        return
    if k.get("status"):
        await _send_json(send, int(k["status"]), err(k.get("message", "fake failure")))
        return
    if route == "/api/embed":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 4)
        await _send_json(send, 200, orjson.dumps({
            "model": model, "embeddings": [[(len(str(x)) + j) / 10 for j in range(dims)]
                                           for x in inputs],
            "prompt_eval_count": words(inputs)}))
        return
    text, extra = _answer(route, body, k)
    key = "response" if route == "/api/generate" else "message"

    def piece(content: str, **more: Any) -> dict[str, Any]:
        value: Any = content if key == "response" else {"role": "assistant", "content": content,
                                                         **more}
        return {"model": model, "created_at": "2024-01-01T00:00:00Z", key: value, "done": False}

    if body.get("stream", True):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")]})
        lines = [piece(w if i == 0 else " " + w) for i, w in enumerate(text.split(" ")) if text]
        if extra:
            lines.append(piece("", **extra))
        lines.append({**piece(""), **_final(body, model, text)})
        for line in lines:
            await send({"type": "http.response.body", "body": orjson.dumps(line) + b"\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await _send_json(send, 200, orjson.dumps({**piece(text, **extra), **_final(body, model, text),
                                              "created": int(time.time())}))


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Ollama server")
