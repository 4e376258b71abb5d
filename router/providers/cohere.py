"""Cohere's v2 API (`cohere/<model>`, also `cohere_chat/<model>`): chat and embed.

Chat goes to `POST /v2/chat`, whose messages and tools are close to OpenAI's (content parts,
`tool_calls`, `tool` results by `tool_call_id`); the reply's content blocks are joined into one
text, its `finish_reason` and `usage.tokens` translated. Streams are SSE events
(`message-start`, `content-delta`, `tool-call-start/delta/end`, `message-end` with the usage)
turned into OpenAI chunks. Embeddings go to `POST /v2/embed` with `input_type` (default
`search_document`) and `embedding_types` (default `["float"]`). The key comes from `api_key`
or COHERE_API_KEY (sent as a bearer token); `api_base` (or COHERE_API_BASE) points elsewhere
than https://api.cohere.com.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest, UpstreamError, redact
from router.providers._via_chat import CompletionsViaChat
from router.providers._wire import (
    completion_id,
    embedding_texts,
    encode_embedding,
    iter_sse,
    open_stream,
    parse_chunk,
    post_json,
    reject_unsupported,
    reply_shape,
    usage,
    without_neutral,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["CohereProvider"]

_PARAMS = {"temperature": "temperature", "top_p": "p", "top_k": "k", "seed": "seed",
           "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
           "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty"}
_SUPPORTED = frozenset({"model", "messages", "stream", "stream_options", "stop", "tools",
                        "tool_choice", "response_format", "user", *_PARAMS})
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user",
                              "input_type", "embedding_types", "truncate"})
_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length",
           "TOOL_CALL": "tool_calls", "ERROR": "stop", "TIMEOUT": "stop"}


class CohereProvider(CompletionsViaChat):
    name = "cohere"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        request = _chat_request(deployment, body, ctx.drop_params)
        reply = await post_json(ctx, deployment, self._url(deployment, "v2/chat"), request,
                                self._headers(deployment))
        with reply_shape(deployment):
            return _completion(reply, deployment.model)

    async def chat_stream(self, deployment: Deployment, body: JSON, ctx: CallContext
                          ) -> AsyncIterator[JSON]:
        request = {**_chat_request(deployment, body, ctx.drop_params), "stream": True}
        state = _Stream(deployment)
        async with open_stream(ctx, deployment, self._url(deployment, "v2/chat"), request,
                               self._headers(deployment)) as resp:
            with reply_shape(deployment):
                async for event, data in iter_sse(resp):
                    for chunk in state.translate(event, parse_chunk(data, deployment)):
                        yield chunk

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        body = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "cohere",
                                  ctx.drop_params)
        texts = embedding_texts(body.get("input"), "cohere")
        request: JSON = {"model": body.get("model", deployment.model), "texts": texts,
                         "input_type": body.get("input_type") or "search_document",
                         "embedding_types": body.get("embedding_types") or ["float"]}
        if body.get("dimensions"):
            request["output_dimension"] = body["dimensions"]
        if body.get("truncate"):
            request["truncate"] = body["truncate"]
        reply = await post_json(ctx, deployment, self._url(deployment, "v2/embed"), request,
                                self._headers(deployment))
        fmt = body.get("encoding_format")
        with reply_shape(deployment):
            by_type = reply["embeddings"]
            kind = "float" if "float" in by_type else next(iter(by_type))
            vectors = by_type[kind]
            tokens = int(((reply.get("meta") or {}).get("billed_units") or {})
                         .get("input_tokens") or 0)
            data = [{"object": "embedding", "index": i,
                     "embedding": encode_embedding(list(v), fmt) if kind == "float"
                     else list(v)} for i, v in enumerate(vectors)]
        return {"object": "list", "model": deployment.model, "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _url(self, dep: Deployment, path: str) -> str:
        base = (dep.api_base or dep.env.get("COHERE_API_BASE") or "https://api.cohere.com")
        base = base.rstrip("/").removesuffix("/v2").removesuffix("/v1")
        return f"{base}/{path}"

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = dep.api_key or dep.env.get("COHERE_API_KEY") or dep.env.get("CO_API_KEY")
        if key:
            headers["authorization"] = f"Bearer {key}"
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return headers


# ---------------------------------------------------------------- requests


def _message(message: JSON) -> JSON:
    role = message.get("role")
    if role == "developer":
        role = "system"
    if role not in ("system", "user", "assistant", "tool"):
        raise BadRequest(f"unsupported message role {role!r}", param="messages")
    out: JSON = {"role": role}
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if part.get("type") not in ("text", "image_url"):
                raise BadRequest(f"cohere does not take message parts of type "
                                 f"{part.get('type')!r}", param="messages")
            parts.append(part)
        content = parts
    if content is not None and content != "":
        out["content"] = content
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id")
        out.setdefault("content", "")
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [{"id": c.get("id"), "type": "function",
                              "function": {"name": (c.get("function") or {}).get("name"),
                                           "arguments": (c.get("function") or {})
                                           .get("arguments") or "{}"}}
                             for c in message["tool_calls"]]
    return out


def _chat_request(dep: Deployment, body: JSON, drop: bool) -> JSON:
    body = reject_unsupported(without_neutral(body), _SUPPORTED, "cohere", drop)
    request: JSON = {"model": body.get("model", dep.model),
                     "messages": [_message(m) for m in body.get("messages") or []]}
    request.update({_PARAMS[k]: v for k, v in body.items() if k in _PARAMS})
    if "stop" in body:
        stop = body["stop"]
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        request["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        request["response_format"] = {"type": "json_object",
                                      "json_schema": (fmt.get("json_schema") or {})
                                      .get("schema") or {}}
    choice = body.get("tool_choice")
    if body.get("tools") and choice != "none":
        request["tools"] = [{"type": "function", "function": t.get("function") or {}}
                            for t in body["tools"]]
        if choice == "required":
            request["tool_choice"] = "REQUIRED"
        elif isinstance(choice, dict):
            # Cohere can require a tool but not name one: offer only the one asked for.
            name = (choice.get("function") or {}).get("name")
            request["tools"] = [t for t in request["tools"] if t["function"].get("name") == name]
            request["tool_choice"] = "REQUIRED"
        elif choice not in (None, "auto"):
            raise BadRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")
    elif body.get("tools"):
        request["tool_choice"] = "NONE"
        request["tools"] = [{"type": "function", "function": t.get("function") or {}}
                            for t in body["tools"]]
    return request


# ---------------------------------------------------------------- replies


def _usage(raw: Any) -> JSON:
    raw = raw if isinstance(raw, dict) else {}
    counts = raw.get("tokens") or raw.get("billed_units") or {}
    return usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content or () if b.get("type") == "text")


def _completion(reply: JSON, model: str) -> JSON:
    msg = reply.get("message") or {}
    calls = [{"id": c["id"], "type": "function",
              "function": {"name": c["function"]["name"],
                           "arguments": c["function"].get("arguments") or "{}"}}
             for c in msg.get("tool_calls") or ()]
    text = _text(msg.get("content"))
    message: JSON = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    finish = _FINISH.get(str(reply.get("finish_reason")), "stop")
    return {"id": reply.get("id") or completion_id(), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if calls else finish}],
            "usage": _usage(reply.get("usage"))}


class _Stream:
    """Cohere's v2 stream events as OpenAI chunks."""

    def __init__(self, dep: Deployment) -> None:
        self.head: JSON = {"id": completion_id(), "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": dep.model}
        self.calls = 0
        self.where, self.secrets = f"{dep.provider}/{dep.model}", dep.secrets

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}

    def translate(self, event: str, data: JSON) -> list[JSON]:
        kind = data.get("type") or event
        message = (data.get("delta") or {}).get("message") or {}
        if kind == "message-start":
            self.head["id"] = data.get("id") or self.head["id"]
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "tool-call-start":
            call = message["tool_calls"]
            self.calls += 1
            fn = call.get("function") or {}
            return [self._chunk({"tool_calls": [{
                "index": self.calls - 1, "id": call["id"], "type": "function",
                "function": {"name": fn["name"], "arguments": fn.get("arguments") or ""}}]})]
        if kind == "tool-call-delta":
            args = ((message.get("tool_calls") or {}).get("function") or {}).get("arguments")
            return [self._chunk({"tool_calls": [{"index": max(self.calls - 1, 0),
                                                 "function": {"arguments": args}}]})] if args \
                else []
        if kind == "message-end":
            delta = data.get("delta") or {}
            if delta.get("error"):
                raise UpstreamError(redact(f"{self.where}: the stream ended with an error: "
                                           f"{str(delta['error'])[:200]}", self.secrets))
            reason = _FINISH.get(str(delta.get("finish_reason")), "stop")
            finish = "tool_calls" if self.calls else reason
            return [self._chunk({}, finish),
                    {**self.head, "choices": [], "usage": _usage(delta.get("usage"))}]
        return []  # content-start, content-end, tool-plan-delta, tool-call-end, citations
