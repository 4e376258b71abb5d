"""What a request asked and what it got back, read from the raw bodies for the callbacks.

Runs in the background sender, never on the request path. Bodies are the OpenAI wire format
the gateway received and sent: a JSON object, a JSON answer or error, or SSE chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["MODEL_PARAMETERS", "Exchange", "read_exchange"]

MODEL_PARAMETERS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed",
                    "stop", "presence_penalty", "frequency_penalty", "reasoning_effort",
                    "response_format", "stream")


@dataclass(slots=True)
class Exchange:
    input: Any = None
    output: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    """The request's `metadata` object (LiteLLM's trace_id, session_id, tags, ...)."""
    user: str | None = None
    response_model: str | None = None
    error_message: str | None = None


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _read_request(endpoint: str, raw: bytes | None, out: Exchange) -> None:
    body = _loads(raw) if raw else None
    if not isinstance(body, dict):
        return
    out.input = body.get({"chat": "messages", "text": "prompt"}.get(endpoint, "input"))
    out.parameters = {k: body[k] for k in MODEL_PARAMETERS if body.get(k) is not None}
    if isinstance(body.get("metadata"), dict):
        out.metadata = body["metadata"]
    if isinstance(body.get("user"), str):
        out.user = body["user"]


def _answer(endpoint: str, doc: dict[str, Any]) -> Any:
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    if endpoint == "chat":
        return choices[0].get("message")
    return choices[0].get("text")


def _read_stream(endpoint: str, raw: bytes, out: Exchange) -> None:
    text: list[str] = []
    for event in raw.split(b"\n\n"):
        if not event.startswith(b"data: ") or event == b"data: [DONE]":
            continue
        doc = _loads(event[6:])
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("error"), dict):
            out.error_message = str(doc["error"].get("message") or "")
            continue
        out.response_model = out.response_model or doc.get("model")
        for choice in doc.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content") if endpoint == "chat" \
                else choice.get("text")
            if isinstance(piece, str):
                text.append(piece)
    joined = "".join(text)
    out.output = {"role": "assistant", "content": joined} if endpoint == "chat" else joined


def read_exchange(
    endpoint: str, stream: bool, request: bytes | None, response: list[bytes] | None
) -> Exchange:
    out = Exchange()
    _read_request(endpoint, request, out)
    if not response:
        return out
    raw = b"".join(response)
    if stream and raw.startswith(b"data: "):
        _read_stream(endpoint, raw, out)
        return out
    doc = _loads(raw)
    if not isinstance(doc, dict):
        return out
    if isinstance(doc.get("error"), dict):
        out.error_message = str(doc["error"].get("message") or "")
        return out
    out.response_model = doc.get("model") if isinstance(doc.get("model"), str) else None
    if endpoint == "embed":
        data = doc.get("data")
        out.output = {"embeddings": len(data) if isinstance(data, list) else 0}
    else:
        out.output = _answer(endpoint, doc)
    return out
