"""JSON schemas (tool parameters, `response_format`) as Vertex takes them: its OpenAPI subset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = ["schema"]

# The OpenAPI subset Vertex takes as a schema (`additionalProperties`, `$schema`, `strict`
# and the like are refused with a 400).
_SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "default",
                          "items", "minItems", "maxItems", "enum", "properties",
                          "propertyOrdering", "required", "minProperties", "maxProperties",
                          "minLength", "maxLength", "pattern", "example", "anyOf", "minimum",
                          "maximum"})


def schema(node: Any) -> Any:
    """A JSON schema cut down to what Vertex accepts; `type: [x, "null"]` becomes nullable."""
    if isinstance(node, list):
        return [schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: JSON = {}
    for key, value in node.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: schema(sub) for name, sub in value.items()}
        elif key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else value
            if "null" in value:
                out["nullable"] = True
        elif key in ("items", "anyOf"):
            out[key] = schema(value)
        else:
            out[key] = value
    return out
