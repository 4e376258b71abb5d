"""OpenAI response shapes and request-param checks shared by the adapters."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = [
    "completion_id",
    "encode_embedding",
    "no_endpoint",
    "prompt_messages",
    "reject_unsupported",
    "text_chunk_from_chat",
    "text_completion_from_chat",
    "usage",
    "without_neutral",
]


def completion_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def reject_unsupported(
    body: JSON, supported: frozenset[str], provider: str, drop: bool
) -> JSON:
    """`body` without params the provider cannot take: dropped if allowed, else a 400."""
    extra = [k for k in body if k not in supported]
    if not extra:
        return body
    if not drop:
        raise BadRequest(
            f"{provider} does not support the parameter `{extra[0]}`. Remove it, or set "
            "`litellm_settings.drop_params: true` to drop unsupported parameters.",
            param=extra[0],
            code="unsupported_parameter",
        )
    return {k: v for k, v in body.items() if k in supported}


# OpenAI params whose default value asks nothing of the provider, so they never count as
# unsupported when a client sends them with that value.
_NEUTRAL = {"n": 1, "logprobs": False, "stream": False, "parallel_tool_calls": True,
            "presence_penalty": 0, "frequency_penalty": 0}


def without_neutral(body: JSON) -> JSON:
    """`body` minus None values, params that sit at their no-op default, and OpenAI's
    `metadata` (a label for the caller's records: it never changes an answer)."""
    return {k: v for k, v in body.items()
            if v is not None and k != "metadata" and not (k in _NEUTRAL and v == _NEUTRAL[k])}


def prompt_messages(prompt: Any) -> list[JSON]:
    """A completions `prompt` as one user message (chat-only providers)."""
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("this provider takes one prompt string per request", param="prompt")
        prompt = prompt[0]
    return [{"role": "user", "content": str(prompt or "")}]


def text_completion_from_chat(result: JSON) -> JSON:
    """A `chat.completion` reshaped as a `text_completion`."""
    return {
        "id": result.get("id", completion_id("cmpl")),
        "object": "text_completion",
        "created": result.get("created", int(time.time())),
        "model": result.get("model"),
        "choices": [{"index": c.get("index", 0), "text": (c.get("message") or {}).get("content")
                     or "", "finish_reason": c.get("finish_reason"), "logprobs": None}
                    for c in result.get("choices", [])],
        "usage": result.get("usage"),
    }


def text_chunk_from_chat(chunk: JSON) -> JSON:
    """A `chat.completion.chunk` reshaped as a streamed `text_completion` chunk."""
    out = {"id": chunk.get("id"), "object": "text_completion", "created": chunk.get("created"),
           "model": chunk.get("model"),
           "choices": [{"index": c.get("index", 0), "text": (c.get("delta") or {}).get("content")
                        or "", "finish_reason": c.get("finish_reason"), "logprobs": None}
                       for c in chunk.get("choices", [])]}
    if chunk.get("usage"):
        out["usage"] = chunk["usage"]
    return out


def encode_embedding(vector: list[float], encoding_format: str | None) -> Any:
    """An embedding as OpenAI returns it: floats, or base64 of little-endian float32."""
    if encoding_format != "base64":
        return vector
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def no_endpoint(provider: str, what: str) -> BadRequest:
    return BadRequest(f"{provider} deployments do not support {what}", param="model",
                      code="unsupported_endpoint")
