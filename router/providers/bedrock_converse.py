"""OpenAI chat ⇄ Bedrock Converse: request body, response, and ConverseStream events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from router.errors import BadRequest
from router.prompts import message_text
from router.providers._wire import completion_id, reject_unsupported, usage, without_neutral

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = ["ConverseStream", "from_converse", "to_converse"]

_SUPPORTED = frozenset({"model", "messages", "stream", "stream_options", "max_tokens",
                        "max_completion_tokens", "temperature", "top_p", "stop", "tools",
                        "tool_choice", "user", "top_k", "parallel_tool_calls"})
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "guardrail_intervened": "content_filter",
           "content_filtered": "content_filter"}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}


def _blocks(content: Any) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out: list[JSON] = []
    for part in content:
        if part.get("type") == "text":
            if part.get("text"):
                out.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            header, _, data = url.partition(",")
            media = header[5:].split(";", 1)[0] if url.startswith("data:") else ""
            if media not in _IMAGE_FORMATS:
                raise BadRequest("bedrock takes images as data: URLs (png, jpeg, gif, webp)",
                                 param="messages")
            out.append({"image": {"format": _IMAGE_FORMATS[media], "source": {"bytes": data}}})
        else:
            raise BadRequest(f"bedrock does not take message parts of type {part.get('type')!r}",
                             param="messages")
    return out


def _messages(messages: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    system: list[JSON] = []
    out: list[JSON] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = message_text(message.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "tool":
            role = "user"
            blocks = [{"toolResult": {"toolUseId": message.get("tool_call_id"),
                                      "content": [{"text": message_text(message.get("content"))}]}}]
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": fn.get("name"),
                                           "input": orjson.loads(fn.get("arguments") or "{}")}})
        elif role == "user":
            blocks = _blocks(message.get("content"))
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
        if out and out[-1]["role"] == role:  # Converse wants roles to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _tool_config(body: JSON) -> JSON | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    specs = [{"toolSpec": {"name": t["function"]["name"],
                           "description": t["function"].get("description") or t["function"]["name"],
                           "inputSchema": {"json": t["function"].get("parameters")
                                           or {"type": "object", "properties": {}}}}}
             for t in tools]
    config: JSON = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("function"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def to_converse(body: JSON, drop_params: bool) -> JSON:
    """A Converse request body from an OpenAI chat body."""
    body = reject_unsupported(without_neutral(body), _SUPPORTED, "bedrock", drop_params)
    system, messages = _messages(body.get("messages") or [])
    request: JSON = {"messages": messages}
    if system:
        request["system"] = system
    config: JSON = {}
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if max_tokens:
        config["maxTokens"] = int(max_tokens)
    if "temperature" in body:
        config["temperature"] = body["temperature"]
    if "top_p" in body:
        config["topP"] = body["top_p"]
    if "stop" in body:
        stop = body["stop"]
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        request["inferenceConfig"] = config
    if "top_k" in body:
        request["additionalModelRequestFields"] = {"top_k": body["top_k"]}
    tools = _tool_config(body)
    if tools:
        request["toolConfig"] = tools
    return request


def _usage(raw: JSON) -> JSON:
    out = usage(int(raw.get("inputTokens") or 0) + int(raw.get("cacheReadInputTokens") or 0),
                int(raw.get("outputTokens") or 0))
    if raw.get("cacheReadInputTokens"):
        out["prompt_tokens_details"] = {"cached_tokens": raw["cacheReadInputTokens"]}
    return out


def from_converse(reply: JSON, model: str) -> JSON:
    """A chat.completion from a Converse response."""
    content = ((reply.get("output") or {}).get("message") or {}).get("content") or []
    text = [b["text"] for b in content if "text" in b]
    calls = [{"id": b["toolUse"]["toolUseId"], "type": "function",
              "function": {"name": b["toolUse"]["name"],
                           "arguments": orjson.dumps(b["toolUse"].get("input", {})).decode()}}
             for b in content if "toolUse" in b]
    message: JSON = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        message["tool_calls"] = calls
    return {"id": completion_id(), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _FINISH.get(reply.get("stopReason", ""), "stop")}],
            "usage": _usage(reply.get("usage") or {})}


class ConverseStream:
    """ConverseStream events → OpenAI chunks (one id for the whole stream)."""

    def __init__(self, model: str) -> None:
        self.head: JSON = {"id": completion_id(), "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": model}
        self.tools: dict[int, int] = {}  # content block index → tool call index

    def chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}

    def translate(self, event: str, data: JSON) -> list[JSON]:
        if event == "messageStart":
            return [self.chunk({"role": data.get("role", "assistant"), "content": ""})]
        if event == "contentBlockStart":
            tool = (data.get("start") or {}).get("toolUse")
            if tool is None:
                return []
            index = self.tools[data.get("contentBlockIndex", 0)] = len(self.tools)
            return [self.chunk({"tool_calls": [{"index": index, "id": tool["toolUseId"],
                                                "type": "function", "function": {
                                                    "name": tool["name"], "arguments": ""}}]})]
        if event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if "text" in delta:
                return [self.chunk({"content": delta["text"]})]
            if "toolUse" in delta:
                index = self.tools.get(data.get("contentBlockIndex", 0), 0)
                return [self.chunk({"tool_calls": [{"index": index, "function": {
                    "arguments": delta["toolUse"].get("input", "")}}]})]
            return []
        if event == "messageStop":
            return [self.chunk({}, _FINISH.get(data.get("stopReason", ""), "stop"))]
        if event == "metadata":
            return [{**self.head, "choices": [], "usage": _usage(data.get("usage") or {})}]
        return []
