"""A loopback fake of Vertex AI, its OAuth2 token endpoint and a GCE metadata server.

- `POST /token`: the JWT bearer grant. The assertion must be RS256-signed by a service account
  listed in FAKE_VERTEX_ACCOUNTS (JSON: email → {"public_key": PEM, "lifetime": seconds}) and
  carry iss = that email, aud = this endpoint's URL, the cloud-platform scope, and an exp in the
  future at most an hour after iat; else 400 `invalid_grant`, as Google answers.
- `GET /computeMetadata/v1/instance/service-accounts/default/token` (needs `Metadata-Flavor:
  Google`) and `.../project/project-id` ("fake-metadata-project"), for GCE_METADATA_HOST.
- `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`,
  `:streamGenerateContent?alt=sse` (SSE, CRLF framing as Google sends it) and `:predict`
  (embeddings); `publishers/anthropic/models/{m}:rawPredict` / `:streamRawPredict` answer as
  Claude on Vertex (Anthropic's Messages format, `anthropic_version: vertex-2023-10-16` in the
  body, no `model`). Every call needs a bearer token this server issued and that has not
  expired, else 401 with Google's error body `{"error": {"code", "message", "status"}}`.
  Bodies are checked the way the API does (unknown fields, roles, part kinds, schemas with
  `additionalProperties`) and refused with a 400 INVALID_ARGUMENT.
Knobs on the model name (`gemini-2.0-flash+status=429`): `status=N` (`retry_after=S` adds
Retry-After), `message=...`, `reply=TEXT`, `echo=1`, `error=context_length`, `blocked=1`
(promptFeedback.blockReason, no candidates), `stream_error=1` (an error event after the first
chunk), `bad_shape=1` (a functionCall without a name). Test routes: /_requests (as
`fake_openai`), GET /_tokens (every token call and issued token), DELETE /_tokens.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from tests.support.fake_anthropic import _events as claude_events
from tests.support.fake_anthropic import _input_words, _tool_use
from tests.support.fake_anthropic import invalid as claude_invalid
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

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
METADATA_PROJECT = "fake-metadata-project"
_ROUTE = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/(google|anthropic)/"
                    r"models/([^/:]+):(\w+)$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
           404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_TOP = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
        "safetySettings", "cachedContent", "labels"}
_PARTS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_GENERATION = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens",
               "stopSequences", "presencePenalty", "frequencyPenalty", "seed",
               "responseMimeType", "responseSchema"}
_SCHEMA_BANNED = {"additionalProperties", "$schema", "strict", "$defs"}

ISSUED: dict[str, tuple[float, str]] = {}  # token → (expiry, who)
TOKEN_CALLS: list[dict[str, Any]] = []


def _accounts() -> dict[str, dict[str, Any]]:
    accounts: dict[str, dict[str, Any]] = orjson.loads(os.environ.get("FAKE_VERTEX_ACCOUNTS")
                                                       or "{}")
    return accounts


def google_error(status: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": status, "message": message,
                                   "status": _STATUS.get(status, "UNKNOWN")}})


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _issue(who: str, lifetime: float) -> dict[str, Any]:
    token = f"ya29.fake-{secrets.token_hex(16)}"
    ISSUED[token] = (time.time() + lifetime, who)
    return {"access_token": token, "expires_in": int(lifetime), "token_type": "Bearer"}


def _check_assertion(assertion: str, audience: str) -> tuple[str | None, str]:
    """(account email, "") when the JWT is good, else (None, why)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        header, claims = orjson.loads(_b64decode(head_b64)), orjson.loads(_b64decode(claims_b64))
    except ValueError:
        return None, "malformed assertion"
    if header.get("alg") != "RS256":
        return None, "alg must be RS256"
    account = _accounts().get(str(claims.get("iss")))
    if account is None:
        return None, "unknown service account"
    key: Any = serialization.load_pem_public_key(account["public_key"].encode())
    try:
        key.verify(_b64decode(sig_b64), f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        return None, "Invalid JWT Signature."
    now = time.time()
    if claims.get("aud") != audience:
        return None, f"aud must be {audience}"
    if claims.get("scope") != SCOPE:
        return None, "scope must be cloud-platform"
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or exp <= now or exp - iat > 3600 \
            or iat > now + 60:
        return None, "Invalid JWT: token must be a short-lived token and in a reasonable timeframe"
    return str(claims["iss"]), ""


async def _token(scope: Scope, raw: bytes, send: Send) -> None:
    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    audience = f"http://{headers_of(scope).get('host')}/token"
    entry: dict[str, Any] = {"grant_type": form.get("grant_type"), "t": time.time()}
    TOKEN_CALLS.append(entry)
    await asyncio.sleep(0.05)  # long enough for concurrent first requests to overlap
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        await _send_json(send, 400, orjson.dumps({"error": "unsupported_grant_type"}))
        return
    who, why = _check_assertion(form.get("assertion", ""), audience)
    entry["iss"] = who
    if who is None:
        await _send_json(send, 400, orjson.dumps({"error": "invalid_grant",
                                                  "error_description": why}))
        return
    reply = _issue(who, float(_accounts()[who].get("lifetime", 3600)))
    entry["token"] = reply["access_token"]
    await _send_json(send, 200, orjson.dumps(reply))


async def _metadata(scope: Scope, send: Send) -> None:
    if headers_of(scope).get("metadata-flavor") != "Google":
        await _send_json(send, 403, b'"Missing Metadata-Flavor:Google header."')
        return
    if scope["path"].endswith("/project/project-id"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/text")]})
        await send({"type": "http.response.body", "body": METADATA_PROJECT.encode()})
        return
    reply = _issue("metadata", 3600)
    TOKEN_CALLS.append({"grant_type": "metadata", "iss": "metadata", "t": time.time(),
                        "token": reply["access_token"]})
    await _send_json(send, 200, orjson.dumps(reply))


def _authorized(scope: Scope) -> bool:
    auth = headers_of(scope).get("authorization", "")
    token = auth.removeprefix("Bearer ")
    issued = ISSUED.get(token) if auth.startswith("Bearer ") else None
    return issued is not None and issued[0] > time.time()


# ---------------------------------------------------------------- Gemini


def _bad_schema(node: Any) -> bool:
    if isinstance(node, dict):
        return bool(_SCHEMA_BANNED & set(node)) or any(_bad_schema(v) for v in node.values())
    if isinstance(node, list):
        return any(_bad_schema(v) for v in node)
    return False


def _gemini_invalid(body: dict[str, Any]) -> str | None:
    unknown = set(body) - _TOP
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "contents is not specified"
    for content in contents:
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. ({content.get('role')})"
        for part in content.get("parts") or [None]:
            if not isinstance(part, dict) or len(set(part) & _PARTS) != 1:
                return "each part must hold exactly one of text, inlineData, fileData, ..."
            if "inlineData" in part and not part["inlineData"].get("mimeType"):
                return "inlineData.mimeType is required"
            if "fileData" in part and not part["fileData"].get("fileUri"):
                return "fileData.fileUri is required"
            if "functionResponse" in part and not isinstance(
                    part["functionResponse"].get("response"), dict):
                return "functionResponse.response must be an object"
    config = body.get("generationConfig") or {}
    if set(config) - _GENERATION:
        return f'Unknown name "{sorted(set(config) - _GENERATION)[0]}" at generation_config'
    if _bad_schema(config.get("responseSchema")) or _bad_schema(body.get("tools")):
        return 'Invalid JSON payload received. Unknown name "additionalProperties"'
    if "systemInstruction" in body and not (body["systemInstruction"].get("parts")):
        return "systemInstruction.parts is required"
    return None


def _gemini_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [d for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {})
    if not tools or mode.get("mode") == "NONE":
        return None
    if any("functionResponse" in p for p in body["contents"][-1]["parts"]):
        return None
    name = (mode.get("allowedFunctionNames") or [tools[0]["name"]])[0]
    return {"functionCall": {"name": name, "args": {"city": "Paris"}},
            "thoughtSignature": "c2lnbmVk"}


def _last_text(body: dict[str, Any]) -> str:
    parts = body["contents"][-1]["parts"]
    return " ".join(p["text"] for p in parts if "text" in p)


def _prompt_words(body: dict[str, Any]) -> int:
    total = sum(words(p.get("text", "")) for p in
                (body.get("systemInstruction") or {}).get("parts") or ())
    for content in body["contents"]:
        total += sum(words(p.get("text", "")) for p in content["parts"])
    return total


def _usage(body: dict[str, Any], out: int) -> dict[str, int]:
    prompt = _prompt_words(body)
    return {"promptTokenCount": prompt, "candidatesTokenCount": out,
            "totalTokenCount": prompt + out}


async def _gemini(send: Send, model: str, method: str, query: str, body: dict[str, Any],
                  k: dict[str, str]) -> None:
    problem = _gemini_invalid(body)
    if problem:
        await _send_json(send, 400, google_error(400, problem))
        return
    if k.get("blocked"):
        await _send_json(send, 200, orjson.dumps({
            "promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": _usage(body, 0)}))
        return
    call = _gemini_call(body)
    if k.get("bad_shape"):  # a function call without its name
        call = {"functionCall": {"args": {}}}
    text = _last_text(body) if k.get("echo") else k.get("reply", DEFAULT_REPLY)
    if method == "generateContent":
        parts = [call] if call else [{"text": text}]
        await _send_json(send, 200, orjson.dumps({
            "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0,
                            "finishReason": "STOP"}],
            "usageMetadata": _usage(body, 3 if call else words(text)),
            "modelVersion": model, "responseId": "resp-fake-01"}))
        return
    if "alt=sse" not in query:
        await _send_json(send, 400, google_error(400, "this fake streams only with alt=sse"))
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    pieces: list[list[dict[str, Any]]] = [[call]] if call else [
        [{"text": w if i == 0 else " " + w}] for i, w in enumerate(text.split(" "))]
    for i, parts in enumerate(pieces):
        reply: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts},
                                                 "index": 0}],
                                 "modelVersion": model, "responseId": "resp-fake-01"}
        if i == len(pieces) - 1:
            reply["candidates"][0]["finishReason"] = "STOP"
            reply["usageMetadata"] = _usage(body, 3 if call else words(text))
        await send({"type": "http.response.body", "more_body": True,
                    "body": b"data: " + orjson.dumps(reply) + b"\r\n\r\n"})
        if k.get("stream_error"):
            await send({"type": "http.response.body", "more_body": True,
                        "body": b"data: " + google_error(503, "The model is overloaded.")
                        + b"\r\n\r\n"})
            break
    await send({"type": "http.response.body", "body": b""})


async def _predict(send: Send, body: dict[str, Any]) -> None:
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or any(
            not isinstance(i.get("content"), str) for i in instances):
        await _send_json(send, 400, google_error(400, "instances[].content is required"))
        return
    if set(body) - {"instances", "parameters"}:
        await _send_json(send, 400, google_error(400, "Unknown name in predict request"))
        return
    size = int((body.get("parameters") or {}).get("outputDimensionality") or 8)
    predictions = [{"embeddings": {
        "values": [round(len(i["content"]) / 100 + j / 1000, 6) for j in range(size)],
        "statistics": {"token_count": words(i["content"]), "truncated": False}}}
        for i in instances]
    await _send_json(send, 200, orjson.dumps({"predictions": predictions,
                                              "metadata": {"billableCharacterCount": 1}}))


async def _claude(send: Send, model: str, method: str, body: dict[str, Any],
                  k: dict[str, str]) -> None:
    if body.get("anthropic_version") != "vertex-2023-10-16":
        problem: tuple[int, bytes] | None = (400, google_error(
            400, "anthropic_version: vertex-2023-10-16 is required"))
    elif "model" in body:
        problem = 400, google_error(400, "model: Extra inputs are not permitted")
    elif (method == "streamRawPredict") != bool(body.get("stream")):
        problem = 400, google_error(400, "streamRawPredict goes with stream: true")
    else:  # the body checks of Anthropic's own API
        problem = claude_invalid(body, {"x-api-key": "-", "anthropic-version": "-"})
    if problem:
        await _send_json(send, *problem)
        return
    text = k.get("reply", DEFAULT_REPLY)
    if method == "streamRawPredict":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for name, data in claude_events(body, model, text, k):
            await send({"type": "http.response.body", "more_body": True,
                        "body": f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"})
        await send({"type": "http.response.body", "body": b""})
        return
    tool = _tool_use(body)
    await _send_json(send, 200, orjson.dumps({
        "id": "msg_vrtx_01", "type": "message", "role": "assistant", "model": model,
        "content": [tool] if tool else [{"type": "text", "text": text}],
        "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": _input_words(body), "output_tokens": 5 if tool
                  else words(text)}}))


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/_tokens":
        if method == "DELETE":
            TOKEN_CALLS.clear()
        await _send_json(send, 200, orjson.dumps({"calls": TOKEN_CALLS,
                                                  "issued": sorted(ISSUED)}))
        return
    if await control(scope, send):
        return
    raw = await _read_body(receive)
    if path == "/token" and method == "POST":
        await _token(scope, raw, send)
        return
    if path.startswith("/computeMetadata/v1/"):
        await _metadata(scope, send)
        return
    route = _ROUTE.match(path)
    body: Any = orjson.loads(raw) if raw else {}
    full_model = route.group(4) if route else ""
    model, k, _ = record(scope, body, model=full_model)
    if route is None:
        await _send_json(send, 404, google_error(404, f"no route {path}"))
        return
    if not _authorized(scope):
        await _send_json(send, 401, google_error(
            401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                 "token, login cookie or other valid authentication credential."))
        return
    if k.get("status"):
        headers = [(b"retry-after", k["retry_after"].encode())] if "retry_after" in k else []
        status = int(k["status"])
        await _send_json(send, status, google_error(status, k.get("message", "fake failure")),
                         headers)
        return
    if k.get("error") == "context_length":
        await _send_json(send, 400, google_error(
            400, "The input token count (1500000) exceeds the maximum number of tokens "
                 "allowed (1048576)."))
        return
    publisher, action = route.group(3), route.group(5)
    query = scope["query_string"].decode()
    if publisher == "anthropic" and action in ("rawPredict", "streamRawPredict"):
        await _claude(send, model, action, body, k)
    elif publisher == "google" and action in ("generateContent", "streamGenerateContent"):
        await _gemini(send, model, action, query, body, k)
    elif publisher == "google" and action == "predict":
        await _predict(send, body)
    else:
        await _send_json(send, 404, google_error(404, f"{publisher} has no method {action}"))


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Vertex AI, OAuth2 token endpoint and GCE metadata server")
