"""OpenAI response shapes and request-param checks shared by the adapters."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = [
    "chunks_from_completion",
    "clean_usage",
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


_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def clean_usage(raw: Any) -> JSON:
    """An upstream's `usage` whose token counts are ints the router can add up: numbers sent
    as floats or digit strings are converted; anything else raises ValueError/TypeError (read
    inside `reply_shape`, a 502)."""
    if type(raw) is not dict:
        raise TypeError(f"usage is a {type(raw).__name__}, not an object")
    fixed: JSON | None = None
    for key in _COUNTS:
        value = raw.get(key)
        if value is None or (type(value) is int and value >= 0):
            continue
        numeric = type(value) is float and 0 <= value < 2**53
        digits = type(value) is str and 0 < len(value) <= 15 and value.isascii() and value.isdigit()
        if not (numeric or digits):
            raise ValueError(f"usage.{key} is not a token count: {str(value)[:40]!r}")
        count = int(value)
        if fixed is None:
            fixed = dict(raw)
        fixed[key] = count
    return raw if fixed is None else fixed


def chunks_from_completion(result: JSON, *, text: bool) -> list[JSON]:
    """A finished `chat.completion` (or `text_completion`) as the chunks its stream would have
    carried: per choice its message as one delta, then its finish_reason; then the usage."""
    kind = "text_completion" if text else "chat.completion.chunk"
    head = {"id": result.get("id") or completion_id("cmpl" if text else "chatcmpl"),
            "object": kind, "created": result.get("created") or int(time.time()),
            "model": result.get("model")}
    out: list[JSON] = []
    for i, choice in enumerate(result.get("choices") or ()):
        index = choice.get("index", i)
        if text:
            out.append({**head, "choices": [{
                "index": index, "text": choice.get("text") or "",
                "finish_reason": choice.get("finish_reason"), "logprobs": choice.get("logprobs")}]})
            continue
        message = choice.get("message") or {}
        delta = {k: v for k, v in message.items() if v is not None}
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [{"index": n, **call}
                                   for n, call in enumerate(delta["tool_calls"])]
        out.append({**head, "choices": [{"index": index, "delta": delta,
                                         "logprobs": choice.get("logprobs"),
                                         "finish_reason": None}]})
        out.append({**head, "choices": [{"index": index, "delta": {}, "logprobs": None,
                                         "finish_reason": choice.get("finish_reason")}]})
    if result.get("usage"):
        out.append({**head, "choices": [], "usage": result["usage"]})
    return out


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


def embedding_texts(raw: Any, provider: str) -> list[str]:
    """An embeddings `input` as texts: one string or a non-empty list of strings (token ids,
    which OpenAI also takes, are refused: these providers embed text)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(t, str) for t in items):
        raise BadRequest(f"{provider} embeddings take a string or a list of strings "
                         "(text, not token ids)", param="input")
    return list(items)


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


def text_reply(model: str, text: str, finish: str, tokens: JSON, *, chat: bool) -> JSON:
    """A whole answer of a text-generating backend (TGI, SageMaker, Workers AI) as a chat
    completion or a text completion."""
    head = {"id": completion_id("chatcmpl" if chat else "cmpl"), "created": int(time.time()),
            "model": model, "usage": tokens}
    if chat:
        return {**head, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": text},
            "finish_reason": finish, "logprobs": None}]}
    return {**head, "object": "text_completion", "choices": [{
        "index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}


class TextChunks:
    """The chunk maker of one stream of such a backend: `chunk(text, finish=None, first=False)`
    gives a `chat.completion.chunk` (the first carries the role) or a text completion chunk,
    `chunk.usage(tokens)` the closing usage chunk; all with the stream's one id."""

    __slots__ = ("chat", "head")

    def __init__(self, model: str, *, chat: bool) -> None:
        self.chat = chat
        self.head: JSON = {
            "id": completion_id("chatcmpl" if chat else "cmpl"),
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()), "model": model}

    def __call__(self, text: str | None, finish: str | None = None, first: bool = False
                 ) -> JSON:
        if not self.chat:
            return {**self.head, "choices": [{"index": 0, "text": text or "",
                                              "finish_reason": finish, "logprobs": None}]}
        delta: JSON = {} if text is None else {"content": text}
        if first:
            delta["role"] = "assistant"
        return {**self.head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                          "logprobs": None}]}

    def usage(self, tokens: JSON) -> JSON:
        return {**self.head, "choices": [], "usage": tokens}
