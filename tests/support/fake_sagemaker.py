"""A loopback fake SageMaker runtime: InvokeEndpoint and InvokeEndpointWithResponseStream.

Routes: POST /endpoints/<name>/invocations and /endpoints/<name>/invocations-response-stream.
Every request must carry a SigV4 signature for service `sagemaker`, re-computed with botocore
(`fake_bedrock.verify_sigv4`, secret from FAKE_AWS_SECRET_ACCESS_KEY), else AWS's 403.
Endpoints whose name contains `embed` are embedding containers (`{"text_inputs": [...]}` →
`{"embedding": [[...], ...]}`); the others are TGI containers, their bodies checked like TGI
checks them (`fake_tgi._invalid`); a container's refusal comes back as SageMaker's ModelError
(424 with OriginalStatusCode / OriginalMessage). Streams are PayloadPart event-stream frames
whose bytes carry TGI's `data:{...}` lines (LMI's JSON lines with `lmi=1`), split across
parts at odd places; a stream request whose body lacks `"stream": true` gets the whole
answer in one part, as TGI sends it. Knobs in the endpoint name (`+key=value`): `throttle=1`
(429 ThrottlingException), `retry_after=S`, `status=N`, `error=context_length` (a ModelError
wrapping TGI's context-length 422), `stream_error=1` (a ModelStreamError frame before the
first whole line), `no_stream=1` (a container that answers streams whole), `echo=1` (answer
with the prompt), `reply=TEXT`. Recorded requests carry `sigv4`,
`action` and `endpoint`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import orjson

from tests.support.fake_bedrock import encode_frame, verify_sigv4
from tests.support.fake_openai import (
    DEFAULT_REPLY,
    STATE,
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
from tests.support.fake_tgi import _invalid

_ROUTE = re.compile(r"^/endpoints/([^/]+)/(invocations|invocations-response-stream)$")


async def _aws_error(send: Send, status: int, kind: str, payload: dict[str, Any],
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"x-amzn-errortype", kind.encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def _model_error(send: Send, original: int, inner: dict[str, Any]) -> None:
    message = orjson.dumps(inner).decode()
    await _aws_error(send, 424, "ModelError", {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if original < 500 else "SERVER_ERROR_FROM_MODEL",
        "Message": f"Received client error ({original}) from primary with message \"{message}\"",
        "OriginalStatusCode": original, "OriginalMessage": message,
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/x"})


def _part(data: bytes) -> bytes:
    return encode_frame({":event-type": "PayloadPart", ":content-type": "application/json",
                         ":message-type": "event"}, data)


async def _generate(send: Send, body: dict[str, Any], k: dict[str, str], stream: bool) -> None:
    text = body["inputs"] if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
    limit = (body.get("parameters") or {}).get("max_new_tokens")
    finish = "eos_token"
    if limit is not None and limit < len(pieces):
        pieces, finish = pieces[:limit], "length"
    details = {"finish_reason": finish, "generated_tokens": len(pieces), "seed": None}
    whole = orjson.dumps([{"generated_text": "".join(pieces), "details": details}])
    if not stream:
        await _send_json(send, 200, whole)
        return
    if not body.get("stream") or k.get("no_stream"):  # TGI streams only when asked
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
        await send({"type": "http.response.body", "body": _part(whole + b"\n")})
        return
    events = [{"token": {"id": i, "text": p, "logprob": -0.1, "special": False},
               "generated_text": None, "details": None} for i, p in enumerate(pieces)]
    events.append({"token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
                   "generated_text": "".join(pieces), "details": details})
    if k.get("lmi"):
        blob = b"".join(orjson.dumps({"token": e["token"], **({"details": e["details"]}
                                                              if e["details"] else {})}) + b"\n"
                        for e in events)
    else:
        blob = b"".join(b"data:" + orjson.dumps(e) + b"\n\n" for e in events)
    # Payload parts split the container's lines anywhere, as SageMaker does.
    frames = [_part(blob[i:i + 23]) for i in range(0, len(blob), 23)]
    if k.get("stream_error"):
        # Cut before the first line is whole: no text has been streamed yet.
        failure = encode_frame(
            {":exception-type": "ModelStreamError", ":content-type": "application/json",
             ":message-type": "exception"},
            orjson.dumps({"Message": "The model container failed mid-stream",
                          "ErrorCode": "ModelStreamError"}))
        frames = [*frames[:2], failure]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream"),
                            (b"x-amzn-sagemaker-content-type", b"application/json")]})
    joined = b"".join(frames)
    for start in range(0, len(joined), 41):  # and the network splits the frames
        await send({"type": "http.response.body", "body": joined[start:start + 41],
                    "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    raw = await _read_body(receive)
    match = _ROUTE.match(scope["raw_path"].decode())
    if not match or scope["method"] != "POST":
        await _aws_error(send, 404, "UnknownOperationException", {"message": "Unknown"})
        return
    endpoint, action = unquote(match.group(1)), match.group(2)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        body = None
    name, k, _ = record(scope, body, model=endpoint)
    verdict = verify_sigv4(scope, raw)
    STATE.requests[-1].update(sigv4=verdict, action=action, endpoint=name)
    if isinstance(verdict, str) or verdict.get("service") != "sagemaker":
        await _aws_error(send, 403, "InvalidSignatureException",
                         {"message": verdict if isinstance(verdict, str) else "wrong service"})
        return
    if not isinstance(body, dict):
        await _aws_error(send, 400, "ValidationError", {"Message": "body is not JSON"})
        return
    if k.get("throttle") or "retry_after" in k:
        extra = [(b"retry-after", k["retry_after"].encode())] if "retry_after" in k else []
        await _aws_error(send, 429, "ThrottlingException",
                         {"message": "Rate exceeded"}, extra)
        return
    if k.get("status"):
        status = int(k["status"])
        kind = "ServiceUnavailable" if status == 503 else "InternalFailure"
        await _aws_error(send, status, kind, {"Message": "fake failure"})
        return
    if "embed" in name:
        texts = body.get("text_inputs")
        if set(body) != {"text_inputs"} or not isinstance(texts, list) or not all(
                isinstance(t, str) for t in texts):
            await _model_error(send, 400, {"error": "expected {\"text_inputs\": [str]}"})
            return
        vectors = [[len(t) / 10, 0.5, 0.25] for t in texts]
        await _send_json(send, 200, orjson.dumps({"embedding": vectors}))
        return
    problem = _invalid(body) or (None if set(body) <= {"inputs", "parameters", "stream"}
                                 else f"unknown field `{sorted(set(body))[0]}`")
    if problem:
        await _model_error(send, 422, {"error": problem, "error_type": "validation"})
        return
    if k.get("error") == "context_length":
        await _model_error(send, 422, {
            "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                     "4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
            "error_type": "validation"})
        return
    await _generate(send, body, k, stream=action == "invocations-response-stream")


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake SageMaker runtime")
