"""OpenAI chat messages → Anthropic Messages API `system` + `messages`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from router.errors import BadRequest
from router.prompts import message_text

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = ["image_source", "to_anthropic_messages"]


def image_source(url: str) -> JSON:
    """An Anthropic image source from an OpenAI image URL (data: URLs inline the bytes)."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _content_blocks(content: Any) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            blocks.append({"type": "image", "source": image_source(url)})
        else:
            raise BadRequest(f"anthropic does not take message parts of type {kind!r}",
                             param="messages")
    return blocks


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise BadRequest("tool call arguments must be JSON", param="messages") from exc
    return raw or {}


def to_anthropic_messages(messages: list[JSON]) -> tuple[str, list[JSON]]:
    """(system prompt, alternating user/assistant messages with content blocks)."""
    system: list[str] = []
    out: list[JSON] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(message_text(message.get("content")))
            continue
        if role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                       "content": message_text(message.get("content"))}]
            role = "user"
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                               "input": _arguments(fn.get("arguments"))})
        elif role == "user":
            blocks = _content_blocks(message.get("content"))
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
        if out and out[-1]["role"] == role:  # the API wants roles to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return "\n".join(s for s in system if s), out
