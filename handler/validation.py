"""Parsing and checking request bodies before the engine sees them: what the engine relies on
(the shape of messages, integers where it does arithmetic, JSON it can encode again) is checked
here, so bad input is a 400 with an OpenAI body and never an exception deep inside."""

from __future__ import annotations

from typing import Any

import orjson

from router.dispatch import CHAT, EMBED, TEXT
from router.errors import BadRequest

__all__ = ["MAX_JSON_DEPTH", "parse_body", "validate", "validate_messages", "validate_prompt"]

MAX_JSON_DEPTH = 128
"""Deepest nesting accepted in a body. orjson encodes at most 254 levels, and a provider adapter
wraps the client's values in a few more levels of its own, so anything deeper could be parsed
but never sent upstream; no real request comes close."""

_REQUIRED = {CHAT: "messages", TEXT: "prompt", EMBED: "input"}
MAX_EMBED_INPUTS = 2048


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    # Only a body with that many brackets can nest that deep (bytes.count runs at C speed).
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(body, MAX_JSON_DEPTH):
        raise BadRequest(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
    return body


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(endpoint: str, body: dict[str, Any], max_n: int) -> None:
    if endpoint == CHAT:
        validate_messages(body.get("messages"))
    else:
        field = _REQUIRED[endpoint]
        value = body.get(field)
        if value is None or value == "" or value == []:
            raise BadRequest(f"`{field}` is required.", param=field)
        if endpoint == TEXT:
            validate_prompt(value)
        elif not (isinstance(value, str) or _texts_or_token_ids(value)):
            raise BadRequest("`input` must be a string, an array of strings, or token ids.",
                             param="input")
        elif isinstance(value, list) and len(value) > MAX_EMBED_INPUTS:
            # OpenAI's own bound; providers that embed one text per call fan a list out.
            raise BadRequest(f"`input` takes at most {MAX_EMBED_INPUTS} items.", param="input")
    if "stream" in body and not isinstance(body["stream"], bool | None):
        raise BadRequest("`stream` must be a boolean.", param="stream")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("`model` must be a string.", param="model")
    if endpoint != EMBED:
        n = body.get("n")
        if n is not None and not (_is_int(n) and 1 <= n <= max_n):
            raise BadRequest(f"`n` must be an integer from 1 to {max_n}.", param="n")
        for name in ("max_tokens", "max_completion_tokens"):
            value = body.get(name)
            if value is not None and not (_is_int(value) and value >= 1):
                raise BadRequest(f"`{name}` must be a positive integer.", param=name)


def validate_messages(messages: Any) -> None:
    """Messages as the token counters and the provider adapters read them."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty array of message objects.",
                         param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f"`{where}` must be an object.", param=where)
        content = message.get("content")
        if isinstance(content, list):
            if not all(isinstance(part, dict) for part in content):
                raise BadRequest(f"`{where}.content` parts must be objects.",
                                 param=f"{where}.content")
        elif not isinstance(content, str | None):
            raise BadRequest(f"`{where}.content` must be a string or an array of parts.",
                             param=f"{where}.content")
        calls = message.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(
                isinstance(c, dict) and isinstance(c.get("function") or {}, dict)
                for c in calls)):
            raise BadRequest(f"`{where}.tool_calls` must be an array of tool call objects.",
                             param=f"{where}.tool_calls")


def validate_prompt(prompt: Any) -> None:
    if not (isinstance(prompt, str) or _texts_or_token_ids(prompt)):
        raise BadRequest("`prompt` must be a string, an array of strings, or token ids.",
                         param="prompt")


def _texts_or_token_ids(value: Any) -> bool:
    """An array of strings, of token ids, or of arrays of token ids (OpenAI's shapes)."""
    if not isinstance(value, list):
        return False
    return (all(isinstance(v, str) for v in value) or all(_is_int(v) for v in value)
            or all(isinstance(v, list) and all(_is_int(t) for t in v) for v in value))
