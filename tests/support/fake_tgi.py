"""A loopback fake Text Generation Inference server.

Routes: POST /generate and /generate_stream (TGI's own format: `inputs` + `parameters`, SSE
tokens ending with `generated_text` and `details`), the OpenAI-compatible /v1/... routes
(served by `fake_openai`), GET /info. `parameters` are checked like TGI does (unknown keys,
temperature > 0, 0 < top_p < 1, at most 4 stop sequences → 422 validation errors).
/generate bodies carry no model, so knobs come from the `x-fake` header only:
`reply=TEXT`, `echo=1` (answer with the prompt received), `error=context_length`
(TGI's "inputs tokens + max_new_tokens must be <= N"), `overloaded=1` (429), `delay=S`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.support import fake_openai
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
)

_PARAMS = {"max_new_tokens", "temperature", "top_p", "top_k", "stop", "seed", "do_sample",
           "details", "decoder_input_details", "frequency_penalty", "repetition_penalty",
           "return_full_text", "truncate", "watermark", "best_of", "typical_p", "grammar"}


def err(message: str, kind: str) -> bytes:
    return orjson.dumps({"error": message, "error_type": kind})


def _invalid(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("inputs"), str):
        return "Failed to deserialize the JSON body: missing field `inputs`"
    params = body.get("parameters") or {}
    unknown = set(params) - _PARAMS
    if unknown:
        return f"Failed to deserialize the JSON body: unknown field `{sorted(unknown)[0]}`"
    if "temperature" in params and not params["temperature"] > 0:
        return "Input validation error: `temperature` must be strictly positive"
    if "top_p" in params and not 0 < params["top_p"] < 1:
        return "Input validation error: `top_p` must be > 0.0 and < 1.0"
    if len(params.get("stop") or []) > 4:
        return "Input validation error: `stop` supports up to 4 stop sequences. Given: 5"
    return None


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    path = scope["path"]
    if path.startswith("/v1/"):
        await fake_openai._app(scope, receive, send)
        return
    if path == "/info":
        await _send_json(send, 200, b'{"model_id": "fake/tgi", "max_total_tokens": 4096}')
        return
    body = orjson.loads(await _read_body(receive) or b"{}")
    _, k, _ = record(scope, body, model="tgi")
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    problem = _invalid(body)
    if problem:
        await _send_json(send, 422, err(problem, "validation"))
        return
    if k.get("error") == "context_length":
        await _send_json(send, 422, err(
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
            "Given: 4000 `inputs` tokens and 200 `max_new_tokens`", "validation"))
        return
    if k.get("overloaded"):
        await _send_json(send, 429, err("Model is overloaded", "overloaded"))
        return
    text = body["inputs"] if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
    limit = (body.get("parameters") or {}).get("max_new_tokens")
    finish = "eos_token"
    if limit is not None and limit < len(pieces):
        pieces, finish = pieces[:limit], "length"
    details = {"finish_reason": finish, "generated_tokens": len(pieces), "seed": None}
    if path == "/generate":
        await _send_json(send, 200, orjson.dumps({"generated_text": "".join(pieces),
                                                  "details": details}))
        return
    if path != "/generate_stream":
        await _send_json(send, 404, b"")
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    events = [{"index": i + 1, "token": {"id": i, "text": p, "logprob": -0.1, "special": False},
               "generated_text": None, "details": None} for i, p in enumerate(pieces)]
    events.append({"index": len(pieces) + 1,
                   "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
                   "generated_text": "".join(pieces), "details": details})
    for event in events:
        await send({"type": "http.response.body", "body": b"data:" + orjson.dumps(event) + b"\n\n",
                    "more_body": True})
    await send({"type": "http.response.body", "body": b""})


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Text Generation Inference server")
