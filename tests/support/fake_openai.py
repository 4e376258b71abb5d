"""A loopback fake OpenAI server: real JSON, SSE and error formats, fast enough to benchmark.

Run it as a process (`python -m tests.support.fake_openai --port N`) or use
`start_fake_openai()`, which starts that process and returns a `FakeUpstream` whose `url` is an
`api_base` (ending in /v1). Routes: POST /v1/chat/completions, /v1/completions,
/v1/embeddings, /v1/responses (the Responses API, JSON and its SSE events; see
`responses_reply`) (also without /v1), GET /v1/models, and for tests:
GET /_requests (every request received: path, headers, body), DELETE /_requests (forget them and
reset counters), GET /_counts (arrivals per model string as sent, knobs included), GET /_peaks
(most requests per model string in flight at once). Each recorded request has `t`
(its arrival, epoch seconds) and, once answered, `done`.

Behaviour knobs, per request: append `+key=value` pairs to the model name
(`gpt-4o+delay=0.2+status=503`), or send them in an `x-fake` header (`delay=0.2+status=503`).
- `delay=S`        wait S seconds before answering (streams: before the first chunk)
- `chunk_delay=S`  wait S seconds between stream chunks
- `gate=NAME`      while gate NAME is closed, hold the answer until it opens (gates start open;
  POST /_gates/NAME/close and /_gates/NAME/open, or `FakeUpstream.gate(NAME)`), so a test can
  keep a call in flight exactly as long as its scenario needs
- `status=N`       fail with HTTP N and an OpenAI error body (`message=...` sets its text)
- `retry_after=S`  send `Retry-After: S` (alone it means `status=429`)
- `error=context_length` / `error=content_filter`  OpenAI's context-length error, Azure's
  content-filter error (both 400)
- `fail_first=K`   fail (with `status`, default 500) only the first K arrivals of this model
- `reply=TEXT`     the answer text (default: "Hello from the fake upstream.")
- `echo=1`         answer with the last user message
- `cut_after=K`    drop the connection after K stream chunks
- `no_stream_options=1`  reject requests carrying `stream_options` (like some older servers)
Usage counts words (whitespace-separated), not real tokens. With `tools` in the request (and
`tool_choice` not "none"), the reply is a call of the chosen (or first) tool.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import hashlib
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DEFAULT_REPLY = "Hello from the fake upstream."
_RECORD_MAX = 20_000
_REASONS = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
            404: "invalid_request_error", 408: "timeout", 429: "requests"}
_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_RATE = [(b"x-ratelimit-remaining-requests", b"99"), (b"openai-processing-ms", b"7")]
"""Sent with every successful chat and Responses answer, as OpenAI sends its own."""


class _State:
    def __init__(self) -> None:
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=_RECORD_MAX)
        self.counts: collections.Counter[str] = collections.Counter()
        self.active: collections.Counter[str] = collections.Counter()
        self.peaks: collections.Counter[str] = collections.Counter()
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        """The gate `name`; set means open."""
        if name not in self.gates:
            self.gates[name] = asyncio.Event()
            self.gates[name].set()
        return self.gates[name]


STATE = _State()


def knobs(model: str, header: str | None) -> tuple[str, dict[str, str]]:
    """(plain model name, knobs) from `name+k=v+k=v` and the x-fake header."""
    name, *pairs = model.split("+")
    if header:
        pairs.extend(header.split("+"))
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = value
    return name, out


def error_body(status: int, message: str, code: str | None = None,
               param: str | None = None) -> bytes:
    kind = _REASONS.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param,
                                   "code": code or _CODES.get(status)}})


def words(text: Any) -> int:
    if isinstance(text, list):
        return sum(words(t) for t in text)
    return len(str(text).split()) if text else 0


def prompt_words(body: dict[str, Any]) -> int:
    total = 0
    for msg in body.get("messages") or ():
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += words(content or "")
    return total + words(body.get("prompt") or "")


def last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


async def _send_json(send: Send, status: int, payload: bytes,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _failure(k: dict[str, str], arrivals: int) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The error response the knobs ask for, or status 0 for none."""
    headers: list[tuple[bytes, bytes]] = []
    if "retry_after" in k:
        headers.append((b"retry-after", k["retry_after"].encode()))
    if "fail_first" in k and arrivals > int(k["fail_first"]):
        return 0, b"", []
    if k.get("error") == "context_length":
        return 400, error_body(
            400, "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9001 tokens. Please reduce the length of the messages.",
            "context_length_exceeded", "messages"), headers
    if k.get("error") == "content_filter":
        body = orjson.dumps({"error": {
            "message": "The response was filtered due to the prompt triggering the content "
                       "management policy.",
            "type": None, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation",
                           "content_filter_result": {"hate": {"filtered": True,
                                                              "severity": "high"}}}}})
        return 400, body, headers
    status = int(k.get("status") or (429 if "retry_after" in k else 0))
    if not status and "fail_first" in k:
        status = 500
    if status:
        message = k.get("message") or f"fake upstream error {status}"
        return status, error_body(status, message), headers
    return 0, b"", []


def _reply(body: dict[str, Any], k: dict[str, str]) -> str:
    if k.get("echo"):
        return last_user_text(body)
    return k.get("reply", DEFAULT_REPLY)


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return None
    name = tools[0]["function"]["name"]
    if isinstance(choice, dict):
        name = choice["function"]["name"]
    return {"id": "call_" + hashlib.md5(name.encode()).hexdigest()[:12], "type": "function",
            "function": {"name": name, "arguments": '{"fake": true}'}}


def chat_response(body: dict[str, Any], model: str, text: str) -> dict[str, Any]:
    call = _tool_call(body)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish = "stop"
    if call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    n = int(body.get("n") or 1)
    completion = words(text) if call is None else 3
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                        for i in range(n)],
            "usage": usage(prompt_words(body), n * completion)}


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def chat_chunks(body: dict[str, Any], model: str, text: str) -> Iterator[dict[str, Any]]:
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

    call = _tool_call(body)
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if call is not None:
        yield chunk({"tool_calls": [{"index": 0, **call}]})
        yield chunk({}, "tool_calls")
    else:
        for i, word in enumerate(text.split(" ")):
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**head, "choices": [], "usage": usage(prompt_words(body), words(text))}


def _responses_input_words(body: dict[str, Any]) -> int:
    raw = body.get("input")
    if isinstance(raw, str):
        return words(raw)
    total = 0
    for item in raw or ():
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            total += words(content)
        elif isinstance(content, list):
            total += sum(words(p.get("text", "")) for p in content if isinstance(p, dict))
    return total + words(body.get("instructions") or "")


def responses_reply(body: dict[str, Any], model: str, text: str) -> dict[str, Any]:
    """A Responses API `response`: a function call of the first tool when tools are given and
    the last input item is not a function call's output, else a message with `text`."""
    raw = body.get("input")
    last = raw[-1] if isinstance(raw, list) and raw else {}
    tools = [t for t in body.get("tools") or () if t.get("type") == "function"]
    if tools and body.get("tool_choice") != "none" and (
            not isinstance(last, dict) or last.get("type") != "function_call_output"):
        output = [{"type": "function_call", "id": "fc_fake01", "call_id": "call_fake01",
                   "name": tools[0]["name"], "arguments": '{"fake": true}',
                   "status": "completed"}]
        out_words = 3
    else:
        output = [{"type": "message", "id": "msg_fake01", "status": "completed",
                   "role": "assistant", "content": [{"type": "output_text", "text": text,
                                                     "annotations": []}]}]
        out_words = words(text)
    prompt = _responses_input_words(body)
    return {"id": "resp_fake01", "object": "response", "created_at": int(time.time()),
            "status": "completed", "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "model": model, "output": output,
            "parallel_tool_calls": True, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [], "temperature": None, "top_p": None,
            "previous_response_id": body.get("previous_response_id"), "metadata": {},
            "usage": {"input_tokens": prompt, "output_tokens": out_words,
                      "total_tokens": prompt + out_words,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def response_events(body: dict[str, Any], model: str, text: str) -> Iterator[dict[str, Any]]:
    final = responses_reply(body, model, text)
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    n = iter(range(10_000))
    yield {"type": "response.created", "sequence_number": next(n), "response": started}
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            yield {"type": "response.output_item.added", "sequence_number": next(n),
                   "output_index": index, "item": {**item, "status": "in_progress",
                                                   "content": []}}
            for i, word in enumerate(text.split(" ")):
                yield {"type": "response.output_text.delta", "sequence_number": next(n),
                       "item_id": item["id"], "output_index": index, "content_index": 0,
                       "delta": word if i == 0 else " " + word, "logprobs": []}
        else:
            yield {"type": "response.output_item.added", "sequence_number": next(n),
                   "output_index": index, "item": {**item, "arguments": "",
                                                   "status": "in_progress"}}
            yield {"type": "response.function_call_arguments.delta",
                   "sequence_number": next(n), "item_id": item["id"], "output_index": index,
                   "delta": item["arguments"]}
        yield {"type": "response.output_item.done", "sequence_number": next(n),
               "output_index": index, "item": item}
    yield {"type": "response.completed", "sequence_number": next(n), "response": final}


async def _typed_stream(send: Send, events: Iterator[dict[str, Any]], k: dict[str, str]) -> None:
    """Events framed as the Responses API frames them (`event: <type>`), no [DONE]."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), *_RATE]})
    gap = float(k.get("chunk_delay") or 0)
    for i, event in enumerate(events):
        if gap and i:
            await asyncio.sleep(gap)
        await send({"type": "http.response.body", "more_body": True,
                    "body": f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event)
                    + b"\n\n"})
    await send({"type": "http.response.body", "body": b""})


def completion_chunks(body: dict[str, Any], model: str, text: str) -> Iterator[dict[str, Any]]:
    head = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
            "model": model}
    for i, word in enumerate(text.split(" ")):
        yield {**head, "choices": [{"index": 0, "text": word if i == 0 else " " + word,
                                    "logprobs": None, "finish_reason": None}]}
    yield {**head, "choices": [{"index": 0, "text": "", "logprobs": None,
                                "finish_reason": "stop"}]}
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**head, "choices": [], "usage": usage(prompt_words(body), words(text))}


def embedding_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    dims = int(body.get("dimensions") or 8)
    data = []
    for i, item in enumerate(inputs):
        digest = hashlib.sha256(orjson.dumps(item)).digest()
        vector = [(digest[j % 32] - 127.5) / 127.5 for j in range(dims)]
        value: Any = vector
        if body.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = words(raw if isinstance(raw, (str, list)) else "")
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


async def _stream(send: Send, chunks: Iterator[dict[str, Any]], k: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache"), *_RATE]})
    gap = float(k.get("chunk_delay") or 0)
    cut = int(k["cut_after"]) if "cut_after" in k else None
    for i, chunk in enumerate(chunks):
        if cut is not None and i >= cut:
            raise ConnectionAbortedError("fake upstream cut the stream")  # uvicorn drops it
        if gap and i:
            await asyncio.sleep(gap)
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                    "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def tracking(handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> Any:
    """An ASGI app serving `handler`, tracking how many of each model are in flight (`/_peaks`)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await handler(scope, receive, send)
        finally:
            model = scope.get("fake_model")
            if model is not None:
                STATE.active[model] -= 1
                scope["fake_record"]["done"] = time.time()  # the answer has been sent

    return asgi


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # served with lifespan="off"; nothing else to speak
        return
    path: str = scope["path"]
    method: str = scope["method"]
    if await control(scope, send):
        return
    raw = await _read_body(receive) if method == "POST" else b""
    route = path.removeprefix("/v1")
    if method == "GET" and route == "/models":
        await _send_json(send, 200, orjson.dumps({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}))
        return
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        await _send_json(send, 400, error_body(400, "We could not parse the JSON body."))
        return
    model, k, arrivals = record(scope, body)
    status, payload, extra = _failure(k, arrivals)
    if not status and k.get("no_stream_options") and "stream_options" in body:
        status, payload = 400, error_body(
            400, "Unrecognized request argument supplied: stream_options", None, "stream_options")
    if k.get("gate"):
        await STATE.gate(k["gate"]).wait()
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if status:
        await _send_json(send, status, payload, extra)
        return
    if route == "/responses" and "model" in body:
        if body.get("stream"):
            await _typed_stream(send, response_events(body, model, _reply(body, k)), k)
        else:
            await _send_json(send, 200, orjson.dumps(responses_reply(body, model,
                                                                     _reply(body, k))),
                             _RATE)
        return
    if route not in ("/chat/completions", "/completions", "/embeddings"):
        await _send_json(send, 404, error_body(404, f"Invalid URL (POST {path})"))
        return
    if "model" not in body:
        await _send_json(send, 400, error_body(400, "you must provide a model parameter",
                                               None, "model"))
        return
    try:
        await _answer(send, route, body, model, k)
    except _UNREADABLE:
        # A body of the wrong shape: OpenAI answers those with a 400, never a 500. Streams
        # are built before their first byte, so this can still send a status.
        await _send_json(send, 400, error_body(400, "The fake could not read this request."))


_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


async def _answer(send: Send, route: str, body: Any, model: str, k: dict[str, str]) -> None:
    text = _reply(body, k)
    if route == "/embeddings":
        await _send_json(send, 200, orjson.dumps(embedding_response(body, model)))
    elif route == "/completions":
        if body.get("stream"):
            await _stream(send, iter(list(completion_chunks(body, model, text))), k)
        else:
            n = int(body.get("n") or 1)
            await _send_json(send, 200, orjson.dumps({
                "id": "cmpl-fake", "object": "text_completion", "created": int(time.time()),
                "model": model, "choices": [{"index": i, "text": text, "logprobs": None,
                                             "finish_reason": "stop"} for i in range(n)],
                "usage": usage(prompt_words(body), n * words(text))}))
    elif body.get("stream"):
        await _stream(send, iter(list(chat_chunks(body, model, text))), k)
    else:
        await _send_json(send, 200, orjson.dumps(chat_response(body, model, text)), _RATE)


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode().lower(): v.decode() for k, v in scope["headers"]}


def record(scope: Scope, body: Any, model: str | None = None) -> tuple[str, dict[str, str], int]:
    """Remember one request and count it in flight (see `app`).

    Returns (plain model name, knobs, arrivals so far of this exact model string)."""
    headers = headers_of(scope)
    path = scope.get("fake_original_path", scope["path"])  # before a wrapper rewrote it
    entry = {"path": path, "query": scope["query_string"].decode(),
             "method": scope["method"], "headers": headers, "body": body, "t": time.time()}
    STATE.requests.append(entry)
    scope["fake_record"] = entry
    full_model = model if model is not None else str(
        body.get("model", "") if isinstance(body, dict) else "")
    name, k = knobs(full_model, headers.get("x-fake"))
    STATE.counts[full_model] += 1
    scope["fake_model"] = full_model
    STATE.active[full_model] += 1
    STATE.peaks[full_model] = max(STATE.peaks[full_model], STATE.active[full_model])
    return name, k, STATE.counts[full_model]


async def control(scope: Scope, send: Send) -> bool:
    """Answer the /_ test routes; False when `scope` is not one of them."""
    if not scope["path"].startswith("/_"):
        return False
    await _control(scope["method"], scope["path"], send)
    return True


async def _control(method: str, path: str, send: Send) -> None:
    if path == "/_requests" and method == "GET":
        await _send_json(send, 200, orjson.dumps(list(STATE.requests)))
    elif path == "/_requests" and method == "DELETE":
        STATE.requests.clear()
        STATE.counts.clear()
        STATE.peaks.clear()
        for gate in STATE.gates.values():
            gate.set()
        await _send_json(send, 200, b"{}")
    elif path == "/_counts":
        await _send_json(send, 200, orjson.dumps(dict(STATE.counts)))
    elif path == "/_peaks":
        await _send_json(send, 200, orjson.dumps(dict(STATE.peaks)))
    elif path.startswith("/_gates/") and path.endswith(("/open", "/close")) and method == "POST":
        name, _, action = path.removeprefix("/_gates/").rpartition("/")
        if action == "open":
            STATE.gate(name).set()
        else:
            STATE.gate(name).clear()
        await _send_json(send, 200, b"{}")
    elif path == "/_health":
        await _send_json(send, 200, b'{"ok": true}')
    else:
        await _send_json(send, 404, b"{}")


@dataclass
class FakeUpstream:
    """A running fake server. `url` is an api_base; `base` the bare http://host:port."""

    base: str
    url: str
    stop: Callable[[], str]

    def requests(self) -> list[dict[str, Any]]:
        import httpx

        return list(httpx.get(f"{self.base}/_requests", timeout=5).json())

    def counts(self) -> dict[str, int]:
        import httpx

        return dict(httpx.get(f"{self.base}/_counts", timeout=5).json())

    def peaks(self) -> dict[str, int]:
        """Most requests of each model string in flight at once."""
        import httpx

        return dict(httpx.get(f"{self.base}/_peaks", timeout=5).json())

    @contextmanager
    def gate(self, name: str) -> Iterator[None]:
        """Closes gate `name` for the block: calls with `gate=name` are held until it ends."""
        import httpx

        httpx.post(f"{self.base}/_gates/{name}/close", timeout=5).raise_for_status()
        try:
            yield
        finally:
            httpx.post(f"{self.base}/_gates/{name}/open", timeout=5).raise_for_status()

    def clear(self) -> None:
        import httpx

        httpx.delete(f"{self.base}/_requests", timeout=5).raise_for_status()

    def __enter__(self) -> FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(module: str, url_suffix: str = "", port: int | None = None,
                 extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> FakeUpstream:
    """Start `python -m <module> --port N` and wait until its /_health answers.

    Output goes to a temporary file rather than a pipe, so a chatty server never blocks on a
    full pipe; `stop()` returns what it printed.
    """
    import os
    import subprocess
    import tempfile

    from tests.support.procs import PYTHON, REPO, free_port, stop, wait_http

    port = port or free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(), outlives this function
    proc = subprocess.Popen(
        [PYTHON, "-m", module, "--port", str(port), *extra_args],
        cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    printed: list[str] = []

    def stop_and_read() -> str:
        if not printed:  # idempotent: a test may stop it early, the fixture again
            stop(proc)
            log.seek(0)
            printed.append(log.read().decode(errors="replace"))
            log.close()
        return printed[0]

    try:
        wait_http(f"{base}/_health", proc)
    except Exception as exc:
        raise RuntimeError(f"{module} did not start:\n{stop_and_read()[-3000:]}") from exc
    return FakeUpstream(base=base, url=base + url_suffix, stop=stop_and_read)


def start_fake_openai(port: int | None = None) -> FakeUpstream:
    return start_server("tests.support.fake_openai", "/v1", port)


def serve(asgi_app: Any, description: str) -> None:
    """Command-line entry shared by every fake server module."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(asgi_app, host=args.host, port=args.port, log_level="warning",
                access_log=False, lifespan="off", backlog=4096)


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake OpenAI server")
