"""Request-body schemas for the OpenAPI document (`/docs`, `/openapi.json`).

The routes read the raw request and check it themselves (handler/validation.py), so FastAPI
knows nothing of their bodies; these small hand-written schemas describe the fields laneway
itself looks at, and allow every other field (they are passed to the provider). They document;
they validate nothing.
"""

from __future__ import annotations

from typing import Any

from handler.limits import DEFAULT_MAX_N
from router.dispatch import CHAT, EMBED, TEXT

__all__ = ["TOKEN_COUNTER_SCHEMA", "request_body_schema"]

_MODEL = {"type": "string", "description": "a model group, alias or wildcard match"}
_PRIORITY = {"type": "integer", "minimum": -1048575, "maximum": 1048575,
             "description": "laneway: lower is served first (default 0)"}
_TOKEN_IDS = {"type": "array", "items": {"type": "integer"}}
_TEXTS = {"oneOf": [
    {"type": "string"},
    {"type": "array", "items": {"type": "string"}},
    _TOKEN_IDS,
    {"type": "array", "items": _TOKEN_IDS},
]}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [
            {"type": "string"},
            {"type": "null"},
            {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string"}, "text": {"type": "string"}}}},
        ]},
        "name": {"type": "string"},
    },
}
_GENERATION = {
    "stream": {"type": "boolean"},
    "n": {"type": "integer", "minimum": 1, "maximum": DEFAULT_MAX_N},
    "max_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "priority": _PRIORITY,
    "timeout": {"type": "number", "exclusiveMinimum": 0,
                "description": "laneway: seconds this request may take in all"},
}
_SCHEMAS: dict[str, dict[str, Any]] = {
    CHAT: {"type": "object", "required": ["model", "messages"], "properties": {
        "model": _MODEL, "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        **_GENERATION}},
    TEXT: {"type": "object", "required": ["model", "prompt"], "properties": {
        "model": _MODEL, "prompt": _TEXTS, **_GENERATION}},
    EMBED: {"type": "object", "required": ["model", "input"], "properties": {
        "model": _MODEL, "input": _TEXTS}},
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def request_body_schema(endpoint: str) -> dict[str, Any]:
    """`openapi_extra` for an inference route of this endpoint kind."""
    return _body(_SCHEMAS[endpoint])


TOKEN_COUNTER_SCHEMA = _body({
    "type": "object", "required": ["model"], "properties": {
        "model": _MODEL,
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "prompt": _TEXTS,
    }})
