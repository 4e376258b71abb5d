"""Anthropic's Messages API (`anthropic/<model>`), translated to and from OpenAI's format.

System messages become `system`; tool calls become `tool_use` blocks and tool results
`tool_result` blocks in a user turn; consecutive turns of one role are merged, as the API wants
roles to alternate. `max_tokens` is required by Anthropic: the deployment's or client's value,
else `DEFAULT_MAX_TOKENS`. The key comes from `api_key` or ANTHROPIC_API_KEY; `api_base`
(or ANTHROPIC_API_BASE) points elsewhere than api.anthropic.com. Anthropic's overloaded error
(HTTP 529) becomes a retryable 503.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from router.errors import BadRequest
from router.providers._via_chat import CompletionsViaChat
from router.providers._wire import (
    completion_id,
    error_from_response,
    iter_sse,
    no_endpoint,
    open_stream,
    parse_chunk,
    post_json,
    reject_unsupported,
    reply_shape,
    usage,
    without_neutral,
)
from router.providers.anthropic_messages import to_anthropic_messages

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicProvider"]

DEFAULT_MAX_TOKENS = 4096
API_VERSION = "2023-06-01"
_SUPPORTED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "stream", "stream_options", "tools", "tool_choice", "user", "metadata", "top_k",
    "parallel_tool_calls",
})
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter"}


def _fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return None, None, None, None
    kind = err.get("type")
    return err.get("message"), None, None, kind


class AnthropicProvider(CompletionsViaChat):
    name = "anthropic"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        request = self._request(deployment, body, ctx, stream=False)
        result = await post_json(ctx, deployment, self._url(deployment), request,
                                 self._headers(deployment), fields=_fields)
        with reply_shape(deployment):
            return _from_message(result)

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        request = self._request(deployment, body, ctx, stream=True)
        state = _StreamState()
        async with open_stream(ctx, deployment, self._url(deployment), request,
                               self._headers(deployment), fields=_fields) as resp:
            with reply_shape(deployment):
                async for event, data in iter_sse(resp):
                    if event == "error":  # overloaded, most likely: a retryable 503
                        raise error_from_response(529, data, {}, deployment, fields=_fields)
                    for chunk in state.translate(event, parse_chunk(data, deployment)):
                        yield chunk

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        raise no_endpoint("anthropic", "embeddings")

    # ------------------------------------------------------------ Messages, passed through

    def speaks(self, deployment: Deployment, kind: str) -> bool:
        return kind == "messages"

    async def native_call(self, deployment: Deployment, kind: str, body: JSON,
                          ctx: CallContext) -> JSON:
        """A Messages request sent as the client wrote it; the reply comes back unchanged."""
        result: JSON = await post_json(ctx, deployment, self._url(deployment),
                                       {**body, "stream": False}, self._headers(deployment),
                                       fields=_fields)
        return result

    async def native_stream(self, deployment: Deployment, kind: str, body: JSON,
                            ctx: CallContext) -> AsyncIterator[JSON]:
        async with open_stream(ctx, deployment, self._url(deployment),
                               {**body, "stream": True}, self._headers(deployment),
                               fields=_fields) as resp:
            async for event, data in iter_sse(resp):
                if event == "error":
                    raise error_from_response(529, data, {}, deployment, fields=_fields)
                yield parse_chunk(data, deployment)

    # ------------------------------------------------------------ request side

    def _request(self, dep: Deployment, body: JSON, ctx: CallContext, stream: bool) -> JSON:
        body = reject_unsupported(without_neutral(body), _SUPPORTED, "anthropic",
                                  ctx.drop_params)
        system, messages = to_anthropic_messages(body.get("messages") or [])
        request: JSON = {
            "model": body.get("model", dep.model),
            "messages": messages,
            "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens")
            or DEFAULT_MAX_TOKENS,
        }
        if system:
            request["system"] = system
        for key in ("temperature", "top_p", "top_k", "metadata"):
            if key in body:
                request[key] = body[key]
        if "stop" in body:
            stop = body["stop"]
            request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if "user" in body:
            request["metadata"] = {**request.get("metadata", {}), "user_id": body["user"]}
        if body.get("tools"):
            request["tools"] = [_tool(t) for t in body["tools"]]
            choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
            if choice is not None:
                request["tool_choice"] = choice
        if stream:
            request["stream"] = True
        return request

    def _url(self, dep: Deployment) -> str:
        base = (dep.api_base or dep.env.get("ANTHROPIC_API_BASE")
                or dep.env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com")
        base = base.rstrip("/")
        if base.endswith("/v1/messages"):
            return base
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        key = dep.api_key or dep.env.get("ANTHROPIC_API_KEY")
        if key:
            headers["x-api-key"] = key
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return headers


def _tool(tool: JSON) -> JSON:
    fn = tool.get("function") or {}
    out = {"name": fn.get("name"), "input_schema": fn.get("parameters")
           or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> JSON | None:
    if choice is None and parallel is None:
        return None
    if choice is None or choice == "auto":
        out: JSON = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and choice.get("function"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise BadRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# ---------------------------------------------------------------- response side


def _usage(raw: JSON) -> JSON:
    prompt = (raw.get("input_tokens") or 0) + (raw.get("cache_creation_input_tokens") or 0) + (
        raw.get("cache_read_input_tokens") or 0)
    out = usage(prompt, raw.get("output_tokens") or 0)
    if raw.get("cache_read_input_tokens"):
        out["prompt_tokens_details"] = {"cached_tokens": raw["cache_read_input_tokens"]}
    return out


def _from_message(msg: JSON) -> JSON:
    text: list[str] = []
    calls = []
    for block in msg.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"], "arguments": orjson.dumps(block.get("input", {})).decode()}})
    message: JSON = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": msg.get("id") or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": msg.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _FINISH.get(msg.get("stop_reason") or "", "stop")}],
        "usage": _usage(msg.get("usage") or {}),
    }


class _StreamState:
    """Turns Anthropic's SSE events into OpenAI chunks, remembering ids and token counts."""

    def __init__(self) -> None:
        self.head: JSON = {"id": completion_id(), "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": None}
        self.raw_usage: JSON = {}
        self.tool_index: dict[int, int] = {}  # content block index → OpenAI tool call index

    def chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}

    def translate(self, event: str, data: JSON) -> list[JSON]:
        kind = data.get("type", event)
        if kind == "message_start":
            msg = data.get("message") or {}
            self.head["id"] = msg.get("id") or self.head["id"]
            self.head["model"] = msg.get("model")
            self.raw_usage.update(msg.get("usage") or {})
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index[data["index"]] = len(self.tool_index)
                return [self.chunk({"tool_calls": [{
                    "index": index, "id": block["id"], "type": "function",
                    "function": {"name": block["name"], "arguments": ""}}]})]
            if block.get("text"):
                return [self.chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self.chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(data.get("index", -1), 0)
                return [self.chunk({"tool_calls": [{
                    "index": index, "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []
        if kind == "message_delta":
            self.raw_usage.update({k: v for k, v in (data.get("usage") or {}).items()
                                   if v is not None})
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self.chunk({}, _FINISH.get(reason or "", "stop"))]
        if kind == "message_stop":
            return [{**self.head, "choices": [], "usage": _usage(self.raw_usage)}]
        return []  # ping, content_block_stop
