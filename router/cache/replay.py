"""A stored answer in the other shape: a streamed answer as one response, a response as a
stream of chunks (`stream` is not part of the cache key, so either may be asked for)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

__all__ = ["assemble", "finished", "replay"]

JSON = dict[str, Any]


def finished(chunk: JSON) -> bool:
    """Whether `chunk` ends a choice (a stream is stored only once every choice ended)."""
    return any(isinstance(c, dict) and c.get("finish_reason") for c in chunk.get("choices") or ())


def assemble(chunks: list[JSON], endpoint: str) -> JSON:
    """The response a stream of chat or text completion chunks adds up to."""
    choices: dict[int, JSON] = {}
    head: JSON = {}
    usage = None
    for chunk in chunks:
        head = head or chunk
        if chunk.get("usage"):
            usage = chunk["usage"]
        for c in chunk.get("choices") or ():
            index = int(c.get("index") or 0)
            choice = choices.setdefault(index, {"index": index, "finish_reason": None})
            if c.get("finish_reason"):
                choice["finish_reason"] = c["finish_reason"]
            if endpoint == "text":
                choice["text"] = choice.get("text", "") + (c.get("text") or "")
                continue
            delta = c.get("delta") or {}
            message = choice.setdefault("message", {"role": "assistant", "content": None})
            if delta.get("role"):
                message["role"] = delta["role"]
            if delta.get("content") is not None:
                message["content"] = (message["content"] or "") + delta["content"]
            for call in delta.get("tool_calls") or ():
                calls = message.setdefault("tool_calls", [])
                i = int(call.get("index") or 0)
                while len(calls) <= i:
                    calls.append({"id": None, "type": "function",
                                  "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    calls[i]["id"] = call["id"]
                fn = call.get("function") or {}
                calls[i]["function"]["name"] += fn.get("name") or ""
                calls[i]["function"]["arguments"] += fn.get("arguments") or ""
    out: JSON = {
        "id": head.get("id"),
        "object": "text_completion" if endpoint == "text" else "chat.completion",
        "created": head.get("created"),
        "model": head.get("model"),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def _chunks_of(body: JSON, endpoint: str) -> list[JSON]:
    """A response as the chunks a stream of it would have sent."""
    base = {"id": body.get("id"), "created": body.get("created"), "model": body.get("model"),
            "object": "text_completion" if endpoint == "text" else "chat.completion.chunk"}
    first, last = [], []
    for c in body.get("choices") or ():
        index = c.get("index", 0)
        if endpoint == "text":
            first.append({"index": index, "text": c.get("text") or "", "finish_reason": None})
            last.append({"index": index, "text": "", "finish_reason": c.get("finish_reason")})
            continue
        message = dict(c.get("message") or {})
        delta: JSON = {"role": message.get("role") or "assistant",
                       "content": message.get("content")}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": i}
                                   for i, call in enumerate(message["tool_calls"])]
        first.append({"index": index, "delta": delta, "finish_reason": None})
        last.append({"index": index, "delta": {}, "finish_reason": c.get("finish_reason")})
    out = [{**base, "choices": first}, {**base, "choices": last}]
    if body.get("usage"):
        out.append({**base, "choices": [], "usage": body["usage"]})
    return out


async def replay(kind: str, body: Any, endpoint: str, include_usage: bool
                 ) -> AsyncIterator[JSON]:
    """A stored answer as a stream; a usage chunk only when the client asked for one."""
    chunks = list(body) if kind == "chunks" else _chunks_of(body, endpoint)
    for chunk in chunks:
        if not chunk.get("choices") and chunk.get("usage") is not None:
            if include_usage:
                yield chunk
            continue
        if chunk.get("usage") is not None and not include_usage:
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        yield chunk
