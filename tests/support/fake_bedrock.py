"""A loopback fake Bedrock runtime: Converse, ConverseStream (AWS event-stream) and InvokeModel.

Every request must carry a SigV4 signature that this server re-computes with botocore from the
secret in FAKE_AWS_SECRET_ACCESS_KEY (default "fake-secret") — or a bearer token equal to
FAKE_BEDROCK_API_KEY — else 403 as AWS answers. Converse bodies are checked like the service
does (known keys, roles alternating from user, block types, inferenceConfig names), errors are
`{"message": ...}` with `x-amzn-ErrorType`. Recorded requests (/_requests) carry the signing
region and service under `sigv4`. Knobs in the model id (`+key=value`): `throttle=1` (429),
`error=context_length` (400 "Input is too long"), `stream_error=throttling` (an exception frame
after the first text delta), `status=N`, `echo=1` (answer with the last user text or the
prompt), `reply=TEXT`, `delay=S`. InvokeModelWithResponseStream with a text model's body
(`prompt` / `inputText`) streams that family's chunks. InvokeModel (and
InvokeModelWithResponseStream, chunk frames carrying base64 events) with an Anthropic
Messages body (`anthropic_version`, no `model` or `stream`) answers as Claude on Bedrock does,
checked like Anthropic's own API.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import struct
import zlib
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
    record,
    serve,
    tracking,
    words,
)

_ROUTE = re.compile(
    r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
_TOP = {"messages", "system", "inferenceConfig", "toolConfig", "additionalModelRequestFields",
        "guardrailConfig", "promptVariables", "requestMetadata", "performanceConfig"}
_BLOCKS = {"text", "image", "document", "toolUse", "toolResult", "video", "cachePoint"}
_INFERENCE = {"maxTokens", "temperature", "topP", "stopSequences"}


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream frame with string headers (the framing Bedrock streams use)."""
    raw_headers = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(kind: str, data: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": kind, ":content-type": "application/json",
                         ":message-type": "event"}, orjson.dumps(data))


def exception(kind: str, message: str) -> bytes:
    return encode_frame({":exception-type": kind, ":content-type": "application/json",
                         ":message-type": "exception"}, orjson.dumps({"message": message}))


async def _aws_error(send: Send, status: int, kind: str, message: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"x-amzn-errortype", f"{kind}:http://internal.amazon.com/".encode())]})
    await send({"type": "http.response.body", "body": orjson.dumps({"message": message})})


def verify_sigv4(scope: Scope, body: bytes) -> dict[str, str] | str:
    """The signature's scope when it is valid, else the reason it is not."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = headers_of(scope)
    authorization = headers.get("authorization", "")
    bearer = os.environ.get("FAKE_BEDROCK_API_KEY")
    if bearer and authorization == f"Bearer {bearer}":
        return {"auth": "bearer"}
    match = _AUTH.fullmatch(authorization)
    if not match:
        return "Missing Authentication Token"
    key_id, _day, region, service, signed, signature = match.groups()
    names = signed.split(";")
    url = f"http://{headers['host']}{scope['raw_path'].decode()}"
    request = AWSRequest(method=scope["method"], url=url, data=body,
                         headers={n: headers.get(n, "") for n in names})
    request.context["timestamp"] = headers.get("x-amz-date", "")
    secret = os.environ.get("FAKE_AWS_SECRET_ACCESS_KEY", "fake-secret")
    signer = SigV4Auth(Credentials(key_id, secret, headers.get("x-amz-security-token")),
                       service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)),
                                request)
    if expected != signature:
        return ("The request signature we calculated does not match the signature you "
                "provided.")
    return {"auth": "sigv4", "region": region, "service": service, "key_id": key_id}


def invalid_converse(body: dict[str, Any]) -> str | None:
    unknown = set(body) - _TOP
    if unknown:
        return f"Unknown parameter in input: \"{sorted(unknown)[0]}\""
    messages = body.get("messages") or []
    if not messages or messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    for i, msg in enumerate(messages):
        if i and msg.get("role") == messages[i - 1].get("role"):
            return "A conversation must alternate between user and assistant roles."
        for block in msg.get("content") or []:
            if len(block) != 1 or next(iter(block)) not in _BLOCKS:
                return f"Invalid content block: {sorted(block)}"
            if "text" in block and not block["text"]:
                return "The text field in the ContentBlock object is blank."
    unknown = set(body.get("inferenceConfig") or {}) - _INFERENCE
    if unknown:
        return f"Unknown parameter in inferenceConfig: \"{sorted(unknown)[0]}\""
    for tool in (body.get("toolConfig") or {}).get("tools", []):
        if "json" not in tool.get("toolSpec", {}).get("inputSchema", {}):
            return "toolSpec.inputSchema.json is required"
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    blocks = body["messages"][-1]["content"]
    return " ".join(b["text"] for b in blocks if "text" in b)


def _tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("toolConfig")
    blocks = body["messages"][-1]["content"]
    if not config or any("toolResult" in b for b in blocks):
        return None
    name = config["tools"][0]["toolSpec"]["name"]
    forced = (config.get("toolChoice") or {}).get("tool")
    if forced:
        name = forced["name"]
    return {"toolUseId": "tooluse_fake01", "name": name, "input": {"city": "Paris"}}


async def _converse(send: Send, body: dict[str, Any], k: dict[str, str], stream: bool) -> None:
    text = _last_user_text(body) if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    tool = _tool_use(body)
    used = {"inputTokens": sum(words(b.get("text", "")) for m in body["messages"]
                               for b in m["content"]) + sum(words(s.get("text", ""))
                                                            for s in body.get("system") or []),
            "outputTokens": 4 if tool else words(text)}
    used["totalTokens"] = used["inputTokens"] + used["outputTokens"]
    stop = "tool_use" if tool else "end_turn"
    if not stream:
        content = [{"toolUse": tool}] if tool else [{"text": text}]
        await _send_json(send, 200, orjson.dumps({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop, "usage": used, "metrics": {"latencyMs": 12}}))
        return
    frames = [event("messageStart", {"role": "assistant"})]
    if tool:
        frames.append(event("contentBlockStart", {"contentBlockIndex": 0, "start": {
            "toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}}))
        for part in ('{"city":', ' "Paris"}'):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0,
                                                      "delta": {"toolUse": {"input": part}}}))
    else:
        for i, word in enumerate(text.split(" ")):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                "text": word if i == 0 else " " + word}}))
            if k.get("stream_error") == "throttling":
                frames.append(exception("throttlingException", "Too many requests, slow down"))
                break
    frames += [event("contentBlockStop", {"contentBlockIndex": 0}),
               event("messageStop", {"stopReason": stop}),
               event("metadata", {"usage": used, "metrics": {"latencyMs": 12}})]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
    # Split frames across body chunks at odd places, as networks do.
    blob = b"".join(frames)
    for start in range(0, len(blob), 37):
        await send({"type": "http.response.body", "body": blob[start:start + 37],
                    "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _claude(send: Send, model: str, body: dict[str, Any], k: dict[str, str],
                  stream: bool) -> None:
    """Claude on Bedrock: Anthropic's Messages body without `model`/`stream`, and its reply."""
    from tests.support import fake_anthropic

    if "model" in body or "stream" in body:
        extra = "model" if "model" in body else "stream"
        await _aws_error(send, 400, "ValidationException",
                         f"extraneous key [{extra}] is not permitted")
        return
    problem = fake_anthropic.invalid(body, {"x-api-key": "-", "anthropic-version": "-"})
    if problem is not None or body.get("anthropic_version") != "bedrock-2023-05-31":
        await _aws_error(send, 400, "ValidationException",
                         "invalid Messages body" if problem is None else problem[1].decode())
        return
    text = k.get("reply", DEFAULT_REPLY)
    if not stream:
        tool = fake_anthropic._tool_use(body)
        content = [tool] if tool else [{"type": "text", "text": text}]
        await _send_json(send, 200, orjson.dumps({
            "id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "tool_use" if tool else "end_turn",
            "stop_sequence": None, "usage": {
                "input_tokens": fake_anthropic._input_words(body),
                "output_tokens": 5 if tool else words(text)}}))
        return
    frames = [event("chunk", {"bytes": base64.b64encode(orjson.dumps(data)).decode()})
              for _, data in fake_anthropic._events(body, model, text, k)]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
    await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _invoke(send: Send, model: str, body: dict[str, Any], k: dict[str, str]) -> None:
    if "inputText" in body and "embed" in model:
        dims = int(body.get("dimensions") or 4)
        vector = [(len(body["inputText"]) + j) / 100 for j in range(dims)]
        reply: dict[str, Any] = {"embedding": vector,
                                 "inputTextTokenCount": words(body["inputText"])}
    elif "texts" in body:
        if body.get("input_type") not in ("search_document", "search_query", "classification",
                                           "clustering"):
            await _aws_error(send, 400, "ValidationException", "invalid input_type")
            return
        reply = {"id": "emb-1", "response_type": "embeddings_floats", "texts": body["texts"],
                 "embeddings": [[len(t) / 10, 0.5, 0.25] for t in body["texts"]]}
    else:
        prompt = body.get("prompt", body.get("inputText", ""))
        text = prompt if k.get("echo") else k.get("reply", DEFAULT_REPLY)
        if model.startswith("meta."):
            reply = {"generation": text, "prompt_token_count": words(prompt),
                     "generation_token_count": words(text), "stop_reason": "stop"}
        elif model.startswith("mistral."):
            reply = {"outputs": [{"text": text, "stop_reason": "stop"}]}
        else:
            reply = {"inputTextTokenCount": words(prompt), "results": [
                {"tokenCount": words(text), "outputText": text, "completionReason": "FINISH"}]}
    await _send_json(send, 200, orjson.dumps(reply))


async def _invoke_stream(send: Send, model: str, body: dict[str, Any], k: dict[str, str]) -> None:
    """InvokeModelWithResponseStream of a text model: chunk frames of the family's JSON, the
    last with `amazon-bedrock-invocationMetrics`."""
    prompt = body.get("prompt", body.get("inputText", ""))
    text = prompt if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    pieces = [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
    events: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if model.startswith("meta."):
            events.append({"generation": piece, "prompt_token_count": None,
                           "generation_token_count": i + 1,
                           "stop_reason": "stop" if last else None})
        elif model.startswith("mistral."):
            events.append({"outputs": [{"text": piece, "stop_reason": "stop" if last else None}]})
        else:
            events.append({"outputText": piece, "index": 0, "totalOutputTextTokenCount": i + 1,
                           "completionReason": "FINISH" if last else None})
    events[-1]["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": words(prompt), "outputTokenCount": len(pieces),
        "invocationLatency": 120, "firstByteLatency": 40}
    frames = [event("chunk", {"bytes": base64.b64encode(orjson.dumps(e)).decode()})
              for e in events]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
    blob = b"".join(frames)
    for start in range(0, len(blob), 29):
        await send({"type": "http.response.body", "body": blob[start:start + 29],
                    "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    raw = await _read_body(receive)
    match = _ROUTE.match(scope["raw_path"].decode())
    if not match:
        await _aws_error(send, 404, "UnknownOperationException", "Unknown operation")
        return
    model_full, action = unquote(match.group(1)), match.group(2)
    body = orjson.loads(raw or b"{}")
    model, k, _ = record(scope, body, model=model_full)
    verdict = verify_sigv4(scope, raw)
    STATE.requests[-1]["sigv4"] = verdict
    STATE.requests[-1]["action"] = action
    STATE.requests[-1]["model_id"] = model
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if isinstance(verdict, str):
        kind = ("MissingAuthenticationTokenException" if verdict.startswith("Missing")
                else "InvalidSignatureException")
        await _aws_error(send, 403, kind, verdict)
        return
    if k.get("throttle"):
        await _aws_error(send, 429, "ThrottlingException", "Too many requests, please wait.")
        return
    if k.get("error") == "context_length":
        await _aws_error(send, 400, "ValidationException", "Input is too long for requested model.")
        return
    if k.get("status"):
        await _aws_error(send, int(k["status"]), "InternalServerException", "fake failure")
        return
    if action == "invoke-with-response-stream" and "anthropic_version" not in body and (
            "prompt" in body or "inputText" in body):
        await _invoke_stream(send, model, body, k)
        return
    if "anthropic_version" in body or action == "invoke-with-response-stream":
        await _claude(send, model, body, k, stream=action == "invoke-with-response-stream")
        return
    if action == "invoke":
        await _invoke(send, model, body, k)
        return
    problem = invalid_converse(body)
    if problem:
        await _aws_error(send, 400, "ValidationException", problem)
        return
    await _converse(send, body, k, stream=action == "converse-stream")


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Bedrock runtime")
